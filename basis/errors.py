"""Every error mediawatch raises on purpose descends from one class, and its message is
written for the user. The CLI maps the two branches to exit codes in one place
(`crawler.cli.main`): 2 for a usage or configuration error, 1 for a runtime failure.

    MediawatchError
     ├── UsageError                  what was asked cannot be done as asked — exit 2
     │    ├── ConfigError            config.yaml is wrong (crawler.config.loading)
     │    ├── QuerySyntaxError       a topic query does not parse (alerts.query)
     │    ├── NotFound               no source, topic, channel, article, story or alert so named
     │    └── NoDatabase             a command that only reads names a SQLite file that does
     │                               not exist (storage.db)
     └── RuntimeFailure              it was tried and failed — exit 1
          ├── DatabaseError          the database cannot be opened or migrated (storage.db)
          ├── DaemonError            the daemon cannot start (crawler.daemon.service)
          ├── FetchError             what a source answered is unusable
          │    ├── NotAFeed          (spiders.feed)
          │    ├── NotASitemap       (spiders.sitemap)
          │    ├── RefusedDestination   a URL the crawler will not fetch
          │    │                        (crawler.engine.fetchguard; also Scrapy's IgnoreRequest)
          │    ├── LookupFailed         a host name that does not resolve (fetchguard)
          │    └── CertificateRejected  a TLS certificate that fails verification
          │                             (crawler.engine.tls)
          └── Undelivered            a crawl or delivery left work undone (failed sources,
                                     items not stored, alerts not sent)
"""
from __future__ import annotations


class MediawatchError(Exception):
    """The base of every error mediawatch raises on purpose."""


class UsageError(MediawatchError):
    """What was asked cannot be done as asked: a wrong option, file or name (exit code 2)."""


class NotFound(UsageError):
    """No source, topic, channel, article, story or alert of that name or id."""


class RuntimeFailure(MediawatchError):
    """It was tried and it failed (exit code 1)."""


class FetchError(RuntimeFailure):
    """What a source answered cannot be used, or must not be fetched."""


class Undelivered(RuntimeFailure):
    """A crawl or a delivery left work undone; the message says what and what to do."""
