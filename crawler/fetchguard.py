"""The guard on every outbound fetch: only http(s), and no loopback, private, link-local,
CGNAT or otherwise non-global destination unless `crawl.allow_private` is true.

Two seams of Scrapy, because a URL names its destination in two ways: an IP literal is
refused by `PrivateAddressMiddleware` before any connection; a host name is resolved by
`PublicOnlyResolver`, which hands the connection only the public addresses, so the address
checked is the address connected to (no window for DNS rebinding). Both see every
redirect hop, since each hop is a new request through the same downloader.
"""
from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.resolver import CachingHostnameResolver
from twisted.internet.interfaces import IResolutionReceiver
from zope.interface import implementer

ALLOWED_SCHEMES = ("http", "https")


class RefusedDestination(IgnoreRequest):
    """A URL the crawler will not fetch."""


def is_public(address: str) -> bool:
    """Whether an IP address is globally routable (IPv4-mapped IPv6 judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class PrivateAddressMiddleware:
    """Refuses other schemes always, and non-public IP literals unless allowed."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PrivateAddressMiddleware:
        return cls(crawler.settings.getbool("MEDIAWATCH_ALLOW_PRIVATE"))

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ALLOWED_SCHEMES:
            raise RefusedDestination(f"refused {parts.scheme}: URL (only http and https)")
        address = literal_address(parts.hostname or "")
        if address and not self.allow_private and not is_public(address):
            raise RefusedDestination(f"refused {address}: not a public address "
                                     "(set crawl.allow_private to fetch it)")


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


class PublicOnlyResolver(CachingHostnameResolver):
    """Resolves host names to their public addresses only; a host with none fails to
    resolve, so no connection is ever opened to it."""

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> PublicOnlyResolver:
        if crawler.settings.getbool("MEDIAWATCH_ALLOW_PRIVATE"):
            raise NotConfigured
        return super().from_crawler(crawler, reactor)

    def resolveHostName(self, resolutionReceiver: Any, hostName: str, *args: Any,
                        **kwargs: Any) -> Any:
        return super().resolveHostName(_PublicOnly(resolutionReceiver), hostName,
                                       *args, **kwargs)
