"""URLs: the one canonical form that identifies an article, the one test of a web URL
(http or https, with a host), and the check of an endpoint URL in config.yaml."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

from basis.text import CONTROL

WEB_SCHEMES = ("http", "https")
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
    "mc_cid", "mc_eid", "spm", "scm", "_ga", "_gl", "ref_src", "ref_url", "cmpid", "ocid",
    "ncid", "sr_share", "share_source", "from_source", "wt.mc_id", "__twitter_impression",
})
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hmsr", "hmpl", "hmcu", "hmkw", "hmci")
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_web_url(url: str) -> bool:
    """Whether `url` is absolute http(s) with a host: what mediawatch fetches and links to."""
    try:
        parts = urlsplit(url.strip())
        return parts.scheme.lower() in WEB_SCHEMES and bool(parts.hostname)
    except ValueError:  # a malformed IPv6 host or port
        return False


def safe_url(url: object) -> str | None:
    """`url` if it is a web URL without controls or spaces, else None: `javascript:` and
    friends never become links."""
    text = str(url or "").strip()
    if not text or CONTROL.search(text) or " " in text:
        return None
    return text if is_web_url(text) else None


def is_tracking_param(name: str) -> bool:
    name = name.lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def canonical_url(url: str, base: str | None = None) -> str:
    """The one form of a URL that identifies an article: lower-case scheme and host, no
    default port, no fragment, no tracking parameters, query sorted, encoding normalized."""
    parts = urlsplit(urljoin(base, url.strip()) if base else url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    netloc = f"[{host}]" if ":" in host else host
    if parts.port and parts.port != DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not is_tracking_param(k)])
    return canonicalize_url(urlunsplit((scheme, netloc, parts.path or "/", query, "")))


def site_of(url: str) -> str:
    """The host of a URL without `www.`: two URLs of one site share it."""
    return (urlsplit(url).hostname or "").removeprefix("www.")


def check_url(url: str, schemes: tuple[str, ...], wrong_scheme: str) -> None:
    """A URL with one of `schemes`, a host, and a numeric port if it has one; else a
    ValueError that says what to write (and never repeats the URL: it may hold a secret).
    `wrong_scheme` is the message for another scheme, with `{scheme}` in it."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises on a port that is not a number
    except ValueError:
        raise ValueError("malformed URL (a bad port or a bad [IPv6] host)") from None
    if parts.scheme.lower() not in schemes:
        raise ValueError(wrong_scheme.format(scheme=parts.scheme.lower() or "missing"))
    if not parts.hostname:
        raise ValueError(f"malformed URL: no host after '{parts.scheme}:' "
                         f"(write {parts.scheme}://host/…)")
