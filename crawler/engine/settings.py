"""Every crawl default in one place: the Scrapy settings derived from `crawl:` in config.yaml.

Keep Scrapy's own defaults unless the flow needs otherwise, and say why next to the value.
The item pipeline order is the order of the flow.
"""
from __future__ import annotations

from typing import Any

from scrapy.settings import default_settings

from crawler.config import CrawlSettings

ITEM_PIPELINES = {
    "crawler.engine.pipeline.ItemPipeline": 300,  # to the ingest step (or a collector)
}

SPIDER_MIDDLEWARES = {  # each item queued for storing as it leaves the spider (in order)
    "crawler.engine.pipeline.QueueAtYield": 1000,
}

DOWNLOADER_MIDDLEWARES = {
    "crawler.engine.fetchguard.PrivateAddressMiddleware": 50,  # before robots.txt is fetched
    "crawler.engine.fetchguard.ProxiedHostMiddleware": 760,  # after HttpProxyMiddleware (750)
    "crawler.engine.tls.RejectedCertificateMiddleware": 900,  # before RetryMiddleware (550)
}

# a deployment's members share each host's limits and robots.txt (crawler.engine.hostgate)
SHARED_POLITENESS = {
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.engine.hostgate.SharedRobotsTxtMiddleware": 100,  # in Scrapy's place
    "crawler.engine.hostgate.HostGateMiddleware": 950,  # next to the download: once per try
}

EXTENSIONS = {
    "scrapy.extensions.throttle.AutoThrottle": None,
    "crawler.engine.extensions.ConditionalAutoThrottle": 0,  # a 304 counts as an answer
    "crawler.engine.extensions.RequestCounter": 0,  # requests per source, into the report
}

# http and https only, also below the guard: no handler for file:, data:, ftp:, s3:;
# https verifies certificates (crawler.engine.tls)
DOWNLOAD_HANDLERS = {"file": None, "data": None, "ftp": None, "s3": None,
                     "https": "crawler.engine.tls.HTTPSDownloadHandler"}

VERIFY_TLS_SETTING = "MEDIAWATCH_VERIFY_TLS"  # crawl.verify_tls (crawler.engine.tls)

# newer Scrapy renamed DNS_RESOLVER (the old name still works there, with a warning)
RESOLVER_SETTING = ("TWISTED_DNS_RESOLVER" if hasattr(default_settings, "TWISTED_DNS_RESOLVER")
                    else "DNS_RESOLVER")


def scrapy_settings(crawl: CrawlSettings, verbose: bool = False, queue: str | None = None,
                    queue_prefix: str = "") -> dict[str, Any]:
    """The crawl's settings; with a deployment's `queue` (and its keys' prefix), politeness
    is kept per host for the whole deployment."""
    settings = _settings(crawl, verbose)
    if queue:
        from crawler.engine.hostgate import GATE, HostGate  # (only a deployment needs Redis)

        settings[GATE] = HostGate(queue, queue_prefix)
        settings["DOWNLOADER_MIDDLEWARES"] = DOWNLOADER_MIDDLEWARES | SHARED_POLITENESS
    return settings


def _settings(crawl: CrawlSettings, verbose: bool) -> dict[str, Any]:
    return {
        "BOT_NAME": "mediawatch",
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots,
        "DOWNLOAD_TIMEOUT": crawl.timeout,  # for the whole response, not between bytes
        "DOWNLOAD_MAXSIZE": crawl.max_bytes,  # also after decompression (gzip, deflate, br, zstd)
        "DOWNLOAD_WARNSIZE": 0,
        "CONCURRENT_REQUESTS": crawl.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.per_domain,
        "AUTOTHROTTLE_ENABLED": True,  # as crawler.engine.extensions's subclass (see EXTENSIONS)
        "AUTOTHROTTLE_START_DELAY": 0.25,  # adapts to each server's latency from there
        "AUTOTHROTTLE_MAX_DELAY": 30.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(crawl.per_domain),
        "RETRY_TIMES": 1,  # the next poll is the real retry
        "RETRY_HTTP_CODES": [500, 502, 504, 522, 524, 408],  # 429/503: Retry-After, per source
        "REDIRECT_MAX_TIMES": 5,  # each hop passes the guard again (crawler.engine.fetchguard)
        "COOKIES_ENABLED": False,  # sessions are never carried between sources or origins
        "HTTPCACHE_ENABLED": False,  # conditional GET uses validators kept in the database
        "TELNETCONSOLE_ENABLED": False,
        # Scrapy's RemoteControl runs Python sent to a loopback HTTP port, and writes its
        # token under ~/.local/state: no crawler of ours opens a way in
        "REMOTE_CONTROL_ENABLED": False,
        "LOG_LEVEL": "INFO" if verbose else "ERROR",
        "LOG_INSTALL_ROOT_HANDLER": False,  # the CLI owns logging (see crawler.cli)
        "ITEM_PIPELINES": ITEM_PIPELINES,
        "SPIDER_MIDDLEWARES": SPIDER_MIDDLEWARES,
        "EXTENSIONS": EXTENSIONS,
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",  # oldest request first:
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",  # no poll starves
        # the check reads the callback's source, for every response: bound methods are
        # never found in its cache (our callbacks return nothing)
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        "DOWNLOADER_STATS": False,  # it serializes every request to count its bytes
        "CONCURRENT_ITEMS": 1,  # a response's items wait for storing one at a time
        "DOWNLOADER_MIDDLEWARES": DOWNLOADER_MIDDLEWARES,
        "DOWNLOAD_HANDLERS": DOWNLOAD_HANDLERS,
        # Scrapy's factory makes verifying connections; crawler.engine.tls decides per host
        "DOWNLOAD_VERIFY_CERTIFICATES": True,
        VERIFY_TLS_SETTING: crawl.verify_tls,
        "MEDIAWATCH_ALLOW_PRIVATE": crawl.allow_private,
        # host names resolve to public addresses only (see crawler.engine.fetchguard)
        RESOLVER_SETTING: "scrapy.resolver.CachingHostnameResolver" if crawl.allow_private
        else "crawler.engine.fetchguard.PublicOnlyResolver",
    }
