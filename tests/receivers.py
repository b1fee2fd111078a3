"""Real receivers for alert channels, on free loopback ports, with switchable behaviour.

    SmtpServer     aiosmtpd; stores every message (raw bytes + parsed email) with its
                   envelope and login; behaviours: accept, tempfail (451 at RCPT or DATA),
                   reject (550 for some or all recipients), stop() (down); optional TLS
                   (STARTTLS or implicit) with a self-signed certificate; AUTH PLAIN/LOGIN
                   for USER / PASSWORD, not required.
    SlackReceiver  http.server in a thread; records every POST (path, headers, body, JSON);
                   answers 200, any status with body and headers (429 + Retry-After, 500,
                   403 invalid_token…), or hangs for N seconds.

Fixtures `smtp_server` and `slack_receiver` (function scope, fresh per test); conftest.py
or a test module imports them from here.
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests import events

USER = "alerts@example.org"
PASSWORD = "p@ss:wörd/1"  # needs URL-encoding: tests that the channel decodes it
WEBHOOK_PATH = "/services/T0SECRET1/B0SECRET2/xoxSecretWebhookToken"
Tls = Literal["none", "starttls", "implicit"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- SMTP

@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    login: str | None  # the AUTH user, when the client logged in


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        behaviour = self.server.behaviour
        if behaviour == "tempfail-rcpt":
            return "451 4.3.0 Mailbox temporarily unavailable, try again later"
        if behaviour == "reject" and (not self.server.rejected or address in self.server.rejected):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.server.behaviour == "tempfail-data":
            return "451 4.3.0 Queue full, try again later"
        raw = envelope.original_content or envelope.content
        login = session.auth_data.login.decode() if session.authenticated else None
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        self.server.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw,
                                             parsed, login))  # type: ignore[arg-type]
        events.happened()
        return "250 2.0.0 Ok: queued"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER
          and auth_data.password.decode() == PASSWORD)
    # handled=False: aiosmtpd answers 535 itself on failure
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@dataclass
class SmtpServer:
    """A real SMTP server on 127.0.0.1; see the module docstring for its behaviours."""

    tls: Tls = "none"
    certificate: tuple[Path, Path] | None = None  # (cert, key) when tls != "none"
    port: int = field(default_factory=free_port)
    messages: list[Received] = field(default_factory=list)
    behaviour: str = "accept"
    rejected: set[str] = field(default_factory=set)
    _controller: Controller | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """The channel URL for this server (credentials URL-encoded when given)."""
        from urllib.parse import quote
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        auth = f"{quote(user, safe='')}:{quote(password or '', safe='')}@" if user else ""
        query = "?starttls=1" if self.tls == "starttls" else ""
        return f"{scheme}://{auth}{self.host}:{self.port}{query}"

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {"authenticator": _authenticate, "auth_require_tls": False}
        if self.tls != "none":
            assert self.certificate, "TLS needs a certificate (see self_signed())"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*map(str, self.certificate))
            if self.tls == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                      server_hostname="mx.mediawatch.test", **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Take the server down: connections are refused until start()."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def accept(self) -> None:
        self.behaviour, self.rejected = "accept", set()

    def tempfail(self, at: Literal["rcpt", "data"] = "rcpt") -> None:
        self.behaviour = f"tempfail-{at}"

    def reject(self, *addresses: str) -> None:
        """550 for these recipients, or for every recipient when none is named."""
        self.behaviour, self.rejected = "reject", set(addresses)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate."""
        assert self.certificate
        return ssl.create_default_context(cafile=str(self.certificate[0]))


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost signed by it, with
    the extensions strict X.509 checking wants. Returns (cert chain, key); the chain file
    starts with the server certificate and ends with the CA, so it also works as `cafile`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def build(subject: str, issuer: x509.Name | None, issuer_key: Any, ca: bool
              ) -> tuple[x509.Certificate, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        now = dt.datetime.now(dt.timezone.utc)
        signer = issuer_key or key
        builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(
                       digital_signature=True, key_cert_sign=ca, crl_sign=ca,
                       content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False, encipher_only=False,
                       decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                  critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       signer.public_key()), critical=False))
        if not ca:
            builder = (builder
                       .add_extension(x509.SubjectAlternativeName([
                           x509.DNSName("localhost"),
                           x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                      critical=False))
        return builder.sign(signer, hashes.SHA256()), key

    ca_cert, ca_key = build("mediawatch test CA", None, None, ca=True)
    cert, key = build("localhost", ca_cert.subject, ca_key, ca=False)
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM)
                                   for c in (cert, ca_cert)))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


# ---------------------------------------------------------------- Slack-like HTTP

@dataclass
class Posted:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class SlackReceiver:
    """A Slack-like incoming-webhook endpoint; see the module docstring."""

    base: str
    requests: list[Posted] = field(default_factory=list)
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang_for: float = 0.0
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        """The webhook URL; its path is the secret that masking must hide."""
        return self.base + WEBHOOK_PATH

    def respond(self, status: int = 200, body: str = "ok",
                headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers, self.hang_for = status, body, headers or {}, 0.0

    def rate_limit(self, retry_after: str = "30") -> None:
        self.respond(429, "rate_limited", {"Retry-After": retry_after})

    def hang(self, seconds: float) -> None:
        """Read the request, then answer nothing for `seconds` (then 200)."""
        self.respond()
        self.hang_for = seconds


class _SlackHandler(BaseHTTPRequestHandler):
    server: _SlackServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        receiver.requests.append(Posted(self.path, dict(self.headers.items()), body))
        events.happened()
        if receiver.hang_for:
            receiver.released.wait(receiver.hang_for)
        answer = receiver.body.encode()
        self.send_response(receiver.status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        for name, value in receiver.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class _SlackServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: SlackReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timed out) while we hung is expected here."""


def start_slack_receiver() -> tuple[SlackReceiver, _SlackServer]:
    server = _SlackServer(("127.0.0.1", 0), _SlackHandler)
    server.receiver = SlackReceiver(f"http://127.0.0.1:{server.server_address[1]}")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server.receiver, server


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain (no TLS) SMTP server, accepting, with AUTH available for USER/PASSWORD."""
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def slack_receiver() -> Iterator[SlackReceiver]:
    receiver, server = start_slack_receiver()
    yield receiver
    receiver.released.set()
    server.shutdown()
    server.server_close()
