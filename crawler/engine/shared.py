"""What a crawl hands its Scrapy components: they take it from the settings in
`from_crawler`, under these names. A Crawler deep-copies the settings it is given, so each
value is `Shared`: every copy of the settings holds the same object."""
from __future__ import annotations

from typing import Any, Self

ITEMS = "MEDIAWATCH_ITEMS"  # where the spider's items go: an Ingest, or a collector
REPORT = "MEDIAWATCH_REPORT"  # the CrawlReport that requests are counted into, if any


class Shared:
    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self
