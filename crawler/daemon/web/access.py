"""Who may read: sign-in with `web.token` (a cookie signed with it), a CSRF token on every
state change, and the headers every response carries."""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

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


def is_loopback(host: str) -> bool:
    """Whether a listen host is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Access:
    """Sessions are `NONCE.SIGNATURE` cookies signed with a key derived from the token (a
    process secret while there is none): a new token signs everyone out, and sessions hold
    across daemons that share the token."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        seed = token.encode() if token else secrets.token_bytes(32)
        self.key = hmac.new(seed, b"mediawatch reading room", hashlib.sha256).digest()

    @property
    def open(self) -> bool:
        """No token: the pages are served on loopback only, and to anyone there."""
        return self.token is None

    def check_token(self, offered: str | None) -> bool:
        return self.token is not None and offered is not None and hmac.compare_digest(
            offered.encode(), self.token.encode())

    def session(self, request: Request) -> str | None:
        """The request's session nonce, if its cookie is ours."""
        nonce, _, signature = (request.cookies.get(SESSION_COOKIE) or "").partition(".")
        if nonce and hmac.compare_digest(signature, self._sign("session", nonce)):
            return nonce
        return None

    def signed_in(self, request: Request) -> bool:
        return self.open or self.session(request) is not None

    def start_session(self, request: Request, response: Response) -> str:
        nonce = secrets.token_urlsafe(18)
        response.set_cookie(SESSION_COOKIE, f"{nonce}.{self._sign('session', nonce)}",
                            max_age=SESSION_DAYS * 86400, httponly=True, samesite="Strict",
                            secure=is_https(request), path="/")
        return nonce

    def end_session(self, request: Request, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="Strict",
                               secure=is_https(request), path="/")

    def csrf(self, nonce: str) -> str:
        """The form token of a session: a POST carries it back."""
        return self._sign("csrf", nonce)

    def check_csrf(self, request: Request) -> bool:
        """A POST from our own page: its form token matches the session, and the browser
        (when it says) sent it from this origin."""
        nonce = self.session(request)
        offered = request.form.get("csrf", "")
        origin = request.headers.get("Origin")
        same_origin = origin is None or origin == request.host_url.rstrip("/")
        return (nonce is not None and same_origin
                and hmac.compare_digest(offered, self.csrf(nonce)))

    def _sign(self, purpose: str, nonce: str) -> str:
        return hmac.new(self.key, f"{purpose}:{nonce}".encode(), hashlib.sha256).hexdigest()


def is_https(request: Request) -> bool:
    """Served over https, or behind a proxy that says it terminated https."""
    return request.scheme == "https" or request.headers.get("X-Forwarded-Proto") == "https"


def local_path(target: str | None) -> str:
    """Where to go after sign-in: a path on this site only (never `//elsewhere`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
