"""Where config.yaml sends things, checked when it loads: web and channel URLs, email
addresses, Apprise URLs. Each check raises `ValueError` saying what to write instead; no
message repeats the value, which may carry a secret (a token, a password)."""
from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import parseaddr

from pydantic import SecretStr

from basis.secrets import hushed
from basis.urls import check_url

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,19}")


def secret_url(*schemes: str) -> Callable[[SecretStr], SecretStr]:
    def check(secret: SecretStr) -> SecretStr:
        check_url(secret.get_secret_value(), schemes,
                  f"URL scheme must be one of {', '.join(schemes)}")
        return secret
    return check


def smtp_url(secret: SecretStr) -> SecretStr:
    """A URL the email channel takes: its own parser decides (port, parameters)."""
    from alerts.channels.email import parse_smtp_url

    try:
        parse_smtp_url(secret.get_secret_value())
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("email channel: ")) from None
    return secret


def email_address(value: str) -> str:
    if "@" not in parseaddr(value)[1] or any(c in value for c in "\r\n"):
        raise ValueError("not an email address (write desk@example.org or "
                         "'Desk <desk@example.org>')")
    return value.strip()


def apprise_url(secret: SecretStr) -> SecretStr:
    """A URL that Apprise can load (parsed, nothing sent). Apprise's own complaint repeats
    the URL, so it is neither logged nor passed on."""
    import apprise

    url = secret.get_secret_value()
    with hushed("apprise"):
        loaded = apprise.Apprise().add(url)
    if loaded:
        return secret
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not _SCHEME.fullmatch(scheme):
        raise ValueError("not an Apprise URL: write service://… (e.g. tgram://bottoken/chatid)")
    if scheme not in apprise.NotificationManager():
        raise ValueError(f"Apprise has no service {scheme}:// "
                         "(see https://github.com/caronc/apprise/wiki)")
    raise ValueError(f"Apprise cannot read this {scheme}:// URL: a token, user or host is "
                     f"missing or malformed (see the Apprise wiki page for {scheme}://)")
