"""XML from the web is parsed with no entity expanded and nothing loaded from elsewhere
(feedparser resolves no external or nested entity on its own); XML we write holds only
characters XML can."""
from __future__ import annotations

import re
from typing import Any

from lxml import etree

# lxml options for XML from the web: no entity expanded, no DTD or anything else loaded
XML_SAFETY: dict[str, bool] = {"resolve_entities": False, "no_network": True,
                               "huge_tree": False, "load_dtd": False}
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def safe_xml_parser(**options: Any) -> etree.XMLParser:
    """An lxml parser for untrusted XML (`etree.fromstring(body, safe_xml_parser())`);
    `etree.iterparse(source, **XML_SAFETY)` is the streaming equivalent."""
    return etree.XMLParser(**XML_SAFETY, **options)


def xml_text(text: str) -> str:
    """Text without the characters XML 1.0 cannot hold (for documents we write)."""
    return _NOT_XML.sub("", text)
