"""Email over SMTP: multipart text + HTML, threaded by Message-ID.

URL: `smtp://user:pass@host:587?starttls=1` (STARTTLS), `smtps://user:pass@host:465`
(implicit TLS), `smtp://host:25` (plain, no auth). User and password are URL-encoded.

Outcomes:
    sent      the server accepted the message for at least one recipient
    refused   5xx: every recipient refused, sender refused, data refused, auth refused;
              or the server lacks STARTTLS/AUTH that the URL asks for
    retry     4xx, connection errors, TLS errors, timeouts
"""
from __future__ import annotations

import base64
import re
import smtplib
import ssl
from collections.abc import Sequence
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from alerts.channels.base import AlertMessage, DeliveryResult
from alerts.channels.render import render, view
from basis.secrets import Redactor, mask_url
from basis.text import clip

# 7bit: non-ASCII bodies go out as quoted-printable or base64, so no 8BITMIME is needed.
POLICY = SMTP_POLICY.clone(cte_type="7bit")
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MSGID_JUNK = re.compile(r"[^\x21-\x7e]|[<>]")
_LIST_LABEL_JUNK = re.compile(r"[^A-Za-z0-9-]+")


class EmailChannel:
    kind = "email"
    min_interval = 0.0

    def __init__(self, url: str, sender: str, to: Sequence[str], *, name: str = "email",
                 timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None,
                 local_hostname: str | None = None) -> None:
        self.name = name
        self.timeout = timeout
        self.sender = _address(sender, "from")
        self.to = tuple(_address(a, "to") for a in to)
        if not self.to:
            raise ValueError("email channel needs at least one recipient in 'to'")
        self._url = url
        parts = parse_smtp_url(url)
        self._implicit_tls, self._starttls, self._host, self._port = parts[:4]
        self._user, self._password = parts[4:]
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname

    def masked(self) -> str:
        return mask_url(self._url, keep_query=True)

    def __repr__(self) -> str:
        return f"EmailChannel({self.name!r}, {self.masked()!r}, to={list(self.to)!r})"

    # ------------------------------------------------------------ sending

    def send(self, message: AlertMessage) -> DeliveryResult:
        raw = self.compose(message).as_bytes(policy=POLICY)
        try:
            refused = self._deliver(raw)
        except smtplib.SMTPRecipientsRefused as exc:
            return _recipients_refused(exc.recipients)
        except smtplib.SMTPNotSupportedError as exc:
            return DeliveryResult.refused(self._reason(f"server lacks what the URL asks: {exc}"))
        except smtplib.SMTPConnectError as exc:
            return DeliveryResult.retry(self._reason(f"cannot connect: {_response(exc)}"))
        except smtplib.SMTPResponseException as exc:  # sender, data, auth, helo refusals
            return self._by_code(exc.smtp_code, _response(exc))
        except UnicodeEncodeError:
            return DeliveryResult.refused("an address is not ASCII and the server cannot take it")
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, TLS, timeouts
            return DeliveryResult.retry(self._reason(_network_error(exc, self.timeout)))
        if refused:
            return DeliveryResult.sent(self._reason(
                "sent; " + _describe_refusals(refused)))
        return DeliveryResult.sent(f"sent to {len(self.to)} recipient(s)")

    def compose(self, message: AlertMessage) -> EmailMessage:
        """The email for `message`: headers from our own values and one-line text only."""
        alert = view(message)
        mail = EmailMessage(policy=POLICY)
        mail["Subject"] = alert.subject
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.to)
        mail["Date"] = format_datetime(datetime.now(timezone.utc))
        mail["Message-ID"] = message_id(message.message_id)
        if message.thread_id:
            mail["In-Reply-To"] = message_id(message.thread_id)
            mail["References"] = message_id(message.thread_id)
        mail["List-Id"] = list_id(message.topic)
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(render("email.txt", alert), charset="utf-8")
        mail.add_alternative(render("email.html", alert), subtype="html", charset="utf-8")
        return mail

    def _tls(self) -> ssl.SSLContext:
        """Built once, when TLS is used: loading the system's CA store costs ~30 ms of CPU."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _deliver(self, raw: bytes) -> dict[str, tuple[int, bytes]]:
        if self._implicit_tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self._host, self._port, timeout=self.timeout,
                                                  local_hostname=self._local_hostname,
                                                  context=self._tls())
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=self.timeout,
                                local_hostname=self._local_hostname)
        try:
            if self._starttls:
                smtp.starttls(context=self._tls())
            if self._user:
                _login(smtp, self._user, self._password)
            return smtp.sendmail(self.sender, list(self.to), raw)
        finally:
            _quit(smtp)

    def _by_code(self, code: int, text: str) -> DeliveryResult:
        reason = self._reason(text)
        return DeliveryResult.refused(reason) if code >= 500 else DeliveryResult.retry(reason)

    def _reason(self, text: str) -> str:
        return clip(Redactor([self._password, self._url])(text), 500)


# ---------------------------------------------------------------- headers

def message_id(value: str) -> str:
    """A header-safe `<local@domain>`: only visible ASCII; a fresh one when empty."""
    core = _MSGID_JUNK.sub("", value or "")
    if not core:
        return make_msgid(domain="mediawatch")
    return f"<{core if '@' in core else core + '@mediawatch'}>"


def list_id(topic: str) -> str:
    label = _LIST_LABEL_JUNK.sub("-", topic).strip("-") or "alerts"
    return f"<{label}.mediawatch>"


def _address(value: str, key: str) -> str:
    address = parseaddr(value)[1]
    if "@" not in address or any(c in value for c in "\r\n"):
        raise ValueError(f"email channel: {key!r} is not an email address")
    return value.strip()


def parse_smtp_url(url: str) -> tuple[bool, bool, str, int, str, str]:
    """(implicit TLS, STARTTLS, host, port, user, password); ValueError names no secret."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("email channel: the SMTP URL is malformed (bad port?)") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("email channel: the URL must be smtp://host[:port] or smtps://host")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"starttls"})
    if unknown:
        raise ValueError(f"email channel: unknown URL parameter {unknown[0]!r} "
                         "(known: starttls)")
    flag = query.get("starttls", ["0"])[-1].lower()
    if flag not in _TRUE | _FALSE:
        raise ValueError("email channel: starttls must be 1 or 0")
    starttls = flag in _TRUE
    if starttls and scheme == "smtps":
        raise ValueError("email channel: smtps:// is already TLS; drop ?starttls=1")
    return (scheme == "smtps", starttls, parts.hostname, port or DEFAULT_PORTS[scheme],
            unquote(parts.username or ""), unquote(parts.password or ""))


# ---------------------------------------------------------------- outcomes

def _response(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(f"{exc.smtp_code} {text}".split())


def _describe_refusals(refused: dict[str, tuple[int, bytes | str]]) -> str:
    return "refused: " + "; ".join(
        f"{rcpt}: {code} {' '.join(_text(msg).split())}" for rcpt, (code, msg) in refused.items())


def _recipients_refused(refused: dict[str, tuple[int, bytes | str]]) -> DeliveryResult:
    reason = clip("recipient " + _describe_refusals(refused), 500)
    if all(code >= 500 for code, _ in refused.values()):
        return DeliveryResult.refused(reason)
    return DeliveryResult.retry(reason)


def _network_error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"server disconnected: {exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot connect: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """smtplib's login, except that non-ASCII credentials go as UTF-8 AUTH PLAIN (RFC 4616),
    which smtplib cannot send."""
    if (user + password).isascii():
        smtp.login(user, password)
        return
    smtp.ehlo_or_helo_if_needed()
    if "PLAIN" not in smtp.esmtp_features.get("auth", "").upper().split():
        raise smtplib.SMTPNotSupportedError("non-ASCII credentials need AUTH PLAIN")
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    code, answer = smtp.docmd("AUTH", "PLAIN " + token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, answer)


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
