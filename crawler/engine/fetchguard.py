"""The guard on every outbound fetch (feeds, pages, robots.txt, links, each redirect hop):
only http(s), no credentials in URLs, and no loopback, private, link-local, CGNAT or
otherwise non-global destination unless `crawl.allow_private` is true.

Three seams of Scrapy, because a URL names its destination in three ways: an IP literal is
refused by `PrivateAddressMiddleware` before any connection; a host name is resolved by
`PublicOnlyResolver`, which hands the connection only the public addresses, so the address
checked is the address connected to (no window for DNS rebinding); a host name fetched
through a proxy (`http_proxy`, `https_proxy`) is resolved by the proxy, so
`ProxiedHostMiddleware` resolves it too and refuses it unless every address is public. The
proxy itself, chosen by whoever runs the crawler, may be on a private address (its host name
is the one the resolver lets through). Scrapy installs the resolver only when a
CrawlerProcess starts; our crawls run on CrawlerRunner, so `install_resolver` does it for
each crawl (and for the daemon). All three see every redirect hop, since each hop is a
new request through the same downloader; `crawler.engine.settings` also removes the download
handlers of every other scheme.

A host name that does not resolve is reported with the resolver's own error
(`PrivateAddressMiddleware.process_exception`); `crawl.allow_private` is named only when the
host resolved to non-public addresses alone: a DNS failure never asks to lower the guard.

The rest of the contract is Scrapy's own behaviour under `crawler.engine.settings`, each point
proved against the fixture web by tests/test_fetchguard.py: DOWNLOAD_TIMEOUT is a deadline
for the whole response (a server dripping bytes is cut off), DOWNLOAD_MAXSIZE bounds the
body after decompression (gzip, deflate, br and zstd bombs), REDIRECT_MAX_TIMES caps
redirects, cookies are off and nothing sets Authorization. XML is parsed safely (basis.xml).
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import getproxies

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import CannotResolveHostError, IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.resolver import CachingHostnameResolver
from scrapy.settings import Settings
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import build_from_crawler, load_object
from twisted.internet.interfaces import IResolutionReceiver
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from basis.errors import FetchError
from basis.urls import WEB_SCHEMES
from crawler.engine.settings import RESOLVER_SETTING

REDIRECT_STATUSES = (301, 302, 303, 307, 308)

class RefusedDestination(FetchError, IgnoreRequest):
    """A URL the crawler will not fetch."""


# IPv6 ranges that carry an IPv4 address in their last 32 bits: NAT64 (what DNS64 answers
# for a name with only an A record) and the deprecated IPv4-compatible form
CARRY_IPV4 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local use only


def is_public(address: str) -> bool:
    """Whether an IP address is globally routable; an IPv6 address carrying an IPv4 one
    (IPv4-mapped, NAT64, 6to4, IPv4-compatible) is judged by that IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in LOCAL_NAT64:
            return False
        if any(ip in network for network in CARRY_IPV4):
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        else:
            ip = ip.ipv4_mapped or ip.sixtofour or ip
    # site-local fec0::/10 is deprecated (RFC 3879) but still routed inside some networks
    return ip.is_global and not ip.is_multicast and not getattr(ip, "is_site_local", False)


def literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class LookupFailed(FetchError, CannotResolveHostError):
    """A host name that does not resolve, with the resolver's error."""

    def __init__(self, host: str, error: str) -> None:
        super().__init__(f"DNS lookup of {host} failed: {error}")


async def lookup(host: str) -> list[str] | str:
    """The addresses `host` resolves to, non-public ones first; or the resolver's error."""
    try:
        found = await maybe_deferred_to_future(deferToThread(
            socket.getaddrinfo, host, None, type=socket.SOCK_STREAM))
    except OSError as exc:
        return exc.strerror or str(exc)
    addresses = {str(info[4][0]) for info in found}
    return sorted(addresses, key=lambda address: (is_public(address), address)) or "no address"


def not_public(host: str, address: str) -> str:
    return f"{host}: it resolves to {address}, not a public address " \
           "(set crawl.allow_private to fetch it)"


def refused(request: Request, reason: str) -> RefusedDestination:
    """The refusal of a request, naming its destination; a redirect hop says it is one."""
    hop = "a redirect to " if request.meta.get("redirect_urls") else ""
    return RefusedDestination(f"refused {hop}{reason}")


class PrivateAddressMiddleware:
    """Refuses other schemes and credentials in URLs always, and non-public IP literals
    unless allowed; a redirect to another scheme is refused by name."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PrivateAddressMiddleware:
        return cls(crawler.settings.getbool("MEDIAWATCH_ALLOW_PRIVATE"))

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in WEB_SCHEMES:
            raise refused(request, f"{parts.scheme}: URL (only http and https)")
        if "@" in parts.netloc:  # the credentials themselves are never repeated
            raise refused(request, "a URL with credentials in it (user:password@)")
        address = literal_address(parts.hostname or "")
        if address and not self.allow_private and not is_public(address):
            raise refused(request, f"{parts.hostname}: not a public address "
                                   "(set crawl.allow_private to fetch it)")

    async def process_exception(self, request: Request, exception: Exception,
                                spider: Spider | None = None) -> None:
        """A host name that did not resolve (the connection's, the proxy's when proxied) is
        looked up again for the reason: the resolver's error, or only non-public addresses
        (which `PublicOnlyResolver` hid)."""
        if not isinstance(exception, CannotResolveHostError) or \
                isinstance(exception, LookupFailed):
            return
        proxy = request.meta.get("proxy")
        host = urlsplit(proxy or request.url).hostname or ""
        found = await lookup(host)
        if isinstance(found, str):
            raise LookupFailed(host, found) from exception
        if not proxy and not self.allow_private and not is_public(found[0]):
            raise refused(request, not_public(host, found[0])) from exception

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Response:
        """Scrapy does not follow a redirect to another scheme but hands it on as an
        HTTP 3xx failure; this names it."""
        location = response.headers.get(b"Location")
        if (response.status in REDIRECT_STATUSES and location
                and not request.meta.get("dont_redirect")
                and response.status not in request.meta.get("handle_httpstatus_list", ())):
            scheme = urlsplit(urljoin(request.url, location.decode("latin-1"))).scheme
            if scheme not in WEB_SCHEMES:
                raise RefusedDestination(f"refused a redirect to a {scheme}: URL "
                                         "(only http and https)")
        return response


class ProxiedHostMiddleware:
    """Resolves the host name of a request sent through a proxy and refuses it unless every
    address is public. The proxy resolves the name again: a DNS answer that changes between
    the two look-ups is for the proxy's own rules to stop."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxiedHostMiddleware:
        if crawler.settings.getbool("MEDIAWATCH_ALLOW_PRIVATE"):
            raise NotConfigured
        return cls()

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        if not request.meta.get("proxy") or literal_address(host):
            return  # not proxied (PublicOnlyResolver), or an IP (PrivateAddressMiddleware)
        found = await lookup(host)
        if isinstance(found, str):
            raise LookupFailed(host, found)
        if not is_public(found[0]):  # a non-public address sorts first
            raise refused(request, not_public(host, found[0]))


@implementer(IResolutionReceiver)
class _PublicOnly:
    def __init__(self, receiver: Any) -> None:
        self.receiver = receiver

    def resolutionBegan(self, resolution: Any) -> None:
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: Any) -> None:
        if is_public(address.host):
            self.receiver.addressResolved(address)

    def resolutionComplete(self) -> None:
        self.receiver.resolutionComplete()


def proxy_hosts() -> frozenset[str]:
    """Hosts of the proxies Scrapy's HttpProxyMiddleware takes from the environment."""
    urls = [url for scheme, url in getproxies().items() if scheme != "no"]
    hosts = {urlsplit(url if "://" in url else f"http://{url}").hostname for url in urls}
    return frozenset(host for host in hosts if host)


class PublicOnlyResolver(CachingHostnameResolver):
    """Resolves host names to their public addresses only; a host with none fails to
    resolve, so no connection is ever opened to it. Configured proxies resolve as they are."""

    proxies: frozenset[str] = frozenset()

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> PublicOnlyResolver:
        if crawler.settings.getbool("MEDIAWATCH_ALLOW_PRIVATE"):
            raise NotConfigured
        resolver = super().from_crawler(crawler, reactor)
        if crawler.settings.getbool("HTTPPROXY_ENABLED"):
            resolver.proxies = proxy_hosts()
        return resolver

    def resolveHostName(self, resolutionReceiver: Any, hostName: str, *args: Any,
                        **kwargs: Any) -> Any:
        if hostName not in self.proxies:
            resolutionReceiver = _PublicOnly(resolutionReceiver)
        return super().resolveHostName(resolutionReceiver, hostName, *args, **kwargs)


_system_resolver: Any = None  # the reactor's own, which every resolver we install wraps


def install_resolver(settings: Mapping[str, Any], reactor: Any) -> None:
    """(The reactor thread, before a crawl.) Install the resolver the crawl's settings name
    (`PublicOnlyResolver` unless crawl.allow_private) over the reactor's own resolver, not
    over one a previous crawl in this process installed."""
    global _system_resolver
    if _system_resolver is None:
        _system_resolver = reactor.nameResolver
    reactor.installNameResolver(_system_resolver)
    resolver_class = load_object(settings[RESOLVER_SETTING])
    resolver = build_from_crawler(resolver_class, SimpleNamespace(settings=Settings(settings)),
                                  reactor=reactor)
    resolver.install_on_reactor()
