"""TLS certificates are verified against the system's CA store (OpenSSL's default paths;
`SSL_CERT_FILE` and `SSL_CERT_DIR` point elsewhere), as a browser would: a forged, expired,
self-signed or wrong-host certificate fails the fetch with the reason in words. Scrapy does
not verify by default.

`crawl.verify_tls: false` turns verification off everywhere; a source's own
`verify_tls: false` turns it off for its host (its feed, its robots.txt, its pages; a link
to another host is verified), for a known-broken official site. `HTTPSDownloadHandler` is
Scrapy's HTTP/1.1 handler with `TLSPolicy` as its context factory: each new connection asks
it, so a config reload (SIGHUP) applies to the next connection."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from OpenSSL import SSL
from OpenSSL.crypto import X509
from scrapy import Request, Spider
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.crawler import Crawler
from service_identity import CertificateError, VerificationError
from service_identity.hazmat import DNS_ID, IPAddress_ID, verify_service_identity
from service_identity.pyopenssl import extract_patterns
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.python.failure import Failure
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from basis.errors import FetchError
from crawler.engine.settings import VERIFY_TLS_SETTING
from spiders.items import SourceSpec

# X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, _SELF_SIGNED_CERT_IN_CHAIN, _UNABLE_TO_GET_ISSUER_CERT_
# LOCALLY, _UNABLE_TO_VERIFY_LEAF_SIGNATURE: the chain does not end at a CA the system trusts
UNKNOWN_ISSUER = (2, 19, 20, 21)
VerifyCallback = Callable[[SSL.Connection, X509, int, int, int], bool]


class CertificateRejected(FetchError):
    """A server's TLS certificate failed verification."""

    def __init__(self, host: str, problem: str) -> None:
        super().__init__(f"TLS certificate of {host} rejected: {problem} "
                         "(a source may set verify_tls: false, see the README)")


def problem(err: int, cert: X509, depth: int) -> str:
    """What is wrong with a certificate, from OpenSSL's verify error code."""
    whose = "" if depth == 0 else "a certificate in its chain "
    crypto = cert.to_cryptography()
    issuer = crypto.issuer.rfc4514_string()
    if err == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
        return f"{whose}expired on {crypto.not_valid_after_utc:%Y-%m-%d}"
    if err == 9:  # X509_V_ERR_CERT_NOT_YET_VALID
        return f"{whose}not valid before {crypto.not_valid_before_utc:%Y-%m-%d}"
    if err == 18:  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        return "self-signed"
    if err in UNKNOWN_ISSUER:  # most often a server that leaves out its intermediate
        return f"its chain is incomplete or its issuer ({issuer}) is not trusted"
    if err == 23:  # X509_V_ERR_CERT_REVOKED
        return f"{whose}revoked"
    return f"{whose}not valid (OpenSSL verify error {err})"


def names(cert: X509) -> str:
    """The host names and addresses a certificate is for."""
    crypto = cert.to_cryptography()
    try:
        alternatives = crypto.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return crypto.subject.rfc4514_string() or "no name"
    return ", ".join(str(name.value) for name in alternatives.value)


def verifier(tls: Any, host: str) -> VerifyCallback:
    """OpenSSL's verdict on each certificate of the chain, and the host name on the server's
    own; a rejection fails the connection with its reason (`CertificateRejected`)."""
    service = IPAddress_ID(host) if isIPAddress(host) or isIPv6Address(host) else DNS_ID(host)

    def verify(connection: SSL.Connection, cert: X509, err: int, depth: int, ok: int) -> bool:
        if not ok:
            reason = problem(err, cert, depth)
        elif depth > 0:
            return True
        else:
            try:
                verify_service_identity(extract_patterns(cert), [service], [])
                return True
            except VerificationError:
                reason = f"wrong host: it is for {names(cert)}, not {host}"
            except CertificateError:  # old sites: a CN and no subjectAltName
                reason = f"wrong host: it names no host ({names(cert)}: no subjectAltName)"
        tls.failVerification(Failure(CertificateRejected(host, reason)))
        return False

    return verify


def accept(connection: SSL.Connection, cert: X509, err: int, depth: int, ok: int) -> bool:
    return True


@implementer(IOpenSSLClientConnectionCreator)
class Connections:
    """Twisted's connection creator for one host, with our verification (or none)."""

    def __init__(self, creator: Any, host: str, check: bool) -> None:
        self.creator, self.host, self.check = creator, host, check

    def clientConnectionForTLS(self, tls: Any) -> SSL.Connection:
        """Twisted's connection (SNI, trust store, TLS versions), our verify callback in
        place of Twisted's (since Twisted 26.4, the only place it checks the host name)."""
        connection = self.creator.clientConnectionForTLS(tls)
        callback = verifier(tls, self.host) if self.check else accept
        connection.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, callback)
        return connection


@implementer(IPolicyForHTTPS)
class TLSPolicy:
    """Verifies every host's certificate unless crawl.verify_tls is false or a source on that
    host set verify_tls: false. `scrapy` is Scrapy's own factory built with
    DOWNLOAD_VERIFY_CERTIFICATES (it keeps the TLS version and cipher settings)."""

    def __init__(self, crawler: Crawler, scrapy: IPolicyForHTTPS) -> None:
        self.crawler, self.scrapy = crawler, scrapy
        self.verify = crawler.settings.getbool(VERIFY_TLS_SETTING, True)
        self.sources: Mapping[str, SourceSpec] = {}
        self.unchecked: frozenset[str] = frozenset()
        self.connections = lru_cache(maxsize=1024)(self._connections)

    def creatorForNetloc(self, hostname: bytes, port: int) -> Connections:
        host = hostname.decode("ascii").lower()
        return self.connections(hostname, port, self.verify and host not in self.hosts())

    def _connections(self, hostname: bytes, port: int, check: bool) -> Connections:
        """(Cached: each context loads the CA store once.)"""
        return Connections(self.scrapy.creatorForNetloc(hostname, port),
                           hostname.decode("ascii"), check)

    def hosts(self) -> frozenset[str]:
        """The hosts of the sources that set verify_tls: false (the spider's sources change
        on a config reload)."""
        sources = getattr(self.crawler.spider, "sources", {})
        if sources is not self.sources:
            self.sources = sources
            self.unchecked = frozenset(  # as Scrapy names them: punycode
                (urlsplit(spec.url).hostname or "").encode("idna").decode("ascii")
                for spec in sources.values() if not spec.verify_tls)
        return self.unchecked


class RejectedCertificateMiddleware:
    """A rejected certificate is the failure itself, as it is (Scrapy wraps it in the
    connection's DownloadFailedError), and is not retried: it will not pass in a second."""

    def process_exception(self, request: Request, exception: Exception,
                          spider: Spider | None = None) -> None:
        lost = exception.__cause__  # ResponseNeverReceived: the reasons the connection was lost
        for reason in getattr(lost, "reasons", ()):
            if isinstance(reason.value, CertificateRejected):
                raise reason.value from exception


class HTTPSDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, its TLS connections made by `TLSPolicy`."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._contextFactory = TLSPolicy(crawler, self._contextFactory)
