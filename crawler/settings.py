"""Every crawl default in one place: the Scrapy settings derived from `crawl:` in config.yaml.

Keep Scrapy's own defaults unless the flow needs otherwise, and say why next to the value.
The item pipeline order is the order of the flow.
"""
from __future__ import annotations

from typing import Any

from crawler.config import CrawlSettings

ITEM_PIPELINES = {
    "crawler.pipeline.StoragePipeline": 300,  # extract → normalize → store
}

DOWNLOADER_MIDDLEWARES = {
    "crawler.fetchguard.PrivateAddressMiddleware": 50,  # before robots.txt is fetched
}


def scrapy_settings(crawl: CrawlSettings, verbose: bool = False) -> dict[str, Any]:
    return {
        "BOT_NAME": "mediawatch",
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots,
        "DOWNLOAD_TIMEOUT": crawl.timeout,
        "DOWNLOAD_MAXSIZE": crawl.max_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "CONCURRENT_REQUESTS": crawl.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.per_domain,
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": 0.25,  # adapts to each server's latency from there
        "AUTOTHROTTLE_MAX_DELAY": 30.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(crawl.per_domain),
        "RETRY_TIMES": 1,  # the next poll is the real retry
        "REDIRECT_MAX_TIMES": 5,
        "COOKIES_ENABLED": False,  # sessions are never carried between sources or origins
        "HTTPCACHE_ENABLED": False,  # conditional GET uses validators kept in the database
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "INFO" if verbose else "ERROR",
        "LOG_INSTALL_ROOT_HANDLER": False,  # the CLI owns logging (see crawler.cli)
        "ITEM_PIPELINES": ITEM_PIPELINES,
        "DOWNLOADER_MIDDLEWARES": DOWNLOADER_MIDDLEWARES,
        "MEDIAWATCH_ALLOW_PRIVATE": crawl.allow_private,
        # host names resolve to public addresses only (see crawler.fetchguard)
        "DNS_RESOLVER": "scrapy.resolver.CachingHostnameResolver" if crawl.allow_private
        else "crawler.fetchguard.PublicOnlyResolver",
    }
