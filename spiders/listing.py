"""Listing pages: the article links a CSS selector picks, resolved against the page."""
from __future__ import annotations

from scrapy.http import Response

from spiders.feed import plain_text
from spiders.items import FeedEntry


def listing_entries(response: Response, selector: str) -> list[FeedEntry]:
    """One entry per distinct link the selector picks: the element itself when it is a link,
    else the first link inside it (a headline block); its text is the entry's title."""
    entries: dict[str, FeedEntry] = {}
    for element in response.css(selector):
        link = element if element.attrib.get("href") else element.css("a[href]")
        href = link.attrib.get("href") if link else None
        if not href or href.startswith(("#", "javascript:", "mailto:")):
            continue
        url = response.urljoin(href.strip())
        entries.setdefault(url, FeedEntry(url=url, title=plain_text(" ".join(
            element.css("::text").getall()))))
    return list(entries.values())
