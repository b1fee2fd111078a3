"""Who may read: sign-in with `web.token` (a cookie signed with it), a CSRF token on every
state change, the hosts an open room answers, and the headers every response carries."""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

SESSION_COOKIE = "mediawatch_session"
SESSION_DAYS = 30
# Nothing from elsewhere, no inline script or style: a hostile title cannot run or restyle.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# Referrer-Policy same-origin, not no-referrer: under no-referrer a browser sends `Origin: null`
# with every POST, even from our own page, and check_csrf refuses it (tests/test_browser.py).
# Links to other sites still carry no referrer.
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
           "Cache-Control": "no-store"}
_UNPRINTABLE = re.compile(r"[\x00-\x20\x7f]")  # a browser drops tabs and newlines in a URL


def is_loopback(host: str | None) -> bool:
    """Whether a host (a listen address, a request's Host) names this machine only."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Access:
    """Sessions are `NONCE.ISSUED.SIGNATURE` cookies signed with a key derived from the
    token (a process secret while there is none): a new token signs everyone out, sessions
    hold across daemons that share the token, and none outlives SESSION_DAYS. `base_url`
    (web.base_url) is the address a proxy serves the room at: its origin is ours too, and
    https there makes the cookie Secure."""

    def __init__(self, token: str | None, base_url: str | None = None) -> None:
        self.token, self.base_url = token, base_url
        seed = token.encode() if token else secrets.token_bytes(32)
        self.key = hmac.new(seed, b"mediawatch reading room", hashlib.sha256).digest()
        self.ended: set[str] = set()  # sessions signed out in this process

    @property
    def open(self) -> bool:
        """No token: the pages are served on loopback only, and to anyone there."""
        return self.token is None

    def check_token(self, offered: str | None) -> bool:
        return self.token is not None and offered is not None and hmac.compare_digest(
            offered.encode(), self.token.encode())

    def answers(self, request: Request) -> bool:
        """An open room answers only requests addressed to a loopback name: a web page
        that rebinds its own name to 127.0.0.1 cannot read it."""
        return not self.open or is_loopback(urlsplit(f"//{request.host}").hostname)

    def session(self, request: Request) -> str | None:
        """The request's session nonce, if its cookie is ours, recent and not ended."""
        nonce, issued, signature = _fields(request.cookies.get(SESSION_COOKIE) or "")
        if not (nonce and issued.isdigit() and nonce not in self.ended):
            return None
        age = time.time() - int(issued)
        fresh = -300 < age < SESSION_DAYS * 86400
        return nonce if fresh and _same(signature, self._sign("session", nonce, issued)) \
            else None

    def signed_in(self, request: Request) -> bool:
        return self.open or self.session(request) is not None

    def start_session(self, request: Request, response: Response) -> str:
        nonce, issued = secrets.token_urlsafe(18), str(int(time.time()))
        response.set_cookie(SESSION_COOKIE,
                            f"{nonce}.{issued}.{self._sign('session', nonce, issued)}",
                            max_age=SESSION_DAYS * 86400, httponly=True, samesite="Strict",
                            secure=self.https(request), path="/")
        return nonce

    def end_session(self, request: Request, response: Response) -> None:
        nonce = self.session(request)
        if nonce:
            self.ended.add(nonce)
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="Strict",
                               secure=self.https(request), path="/")

    def csrf(self, nonce: str) -> str:
        """The form token of a session: a POST carries it back."""
        return self._sign("csrf", nonce)

    def check_csrf(self, request: Request) -> bool:
        """A POST from our own page: its form token matches the session, and the browser
        (when it says) sent it from our origin."""
        nonce = self.session(request)
        origin = request.headers.get("Origin")
        ours = {origin_of(request.host_url)} | ({origin_of(self.base_url)}
                                                if self.base_url else set())
        return (nonce is not None and (origin is None or origin.lower() in ours)
                and _same(request.form.get("csrf", ""), self.csrf(nonce)))

    def https(self, request: Request) -> bool:
        return is_https(request, self.base_url)

    def _sign(self, purpose: str, *parts: str) -> str:
        message = ":".join((purpose, *parts)).encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()


def is_https(request: Request, base_url: str | None = None) -> bool:
    """Served over https, directly or behind the proxy `base_url` (web.base_url) names; a
    client's X-Forwarded-Proto is not trusted."""
    return request.scheme == "https" or bool(base_url and base_url.lower().startswith("https:"))


def _fields(cookie: str) -> tuple[str, str, str]:
    parts = cookie.split(".")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else ("", "", "")


def _same(offered: str, expected: str) -> bool:
    return hmac.compare_digest(offered.encode(), expected.encode())


def local_path(target: str | None) -> str:
    """Where to go after sign-in: a path on this site only (never `//elsewhere`, nor one a
    browser would make so by dropping a tab or newline)."""
    if not target or _UNPRINTABLE.search(target) or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
