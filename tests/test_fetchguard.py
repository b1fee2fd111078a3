"""The fetch guard (crawler.engine.fetchguard), proved through the real CLI against the fixture web.

Every outbound URL takes one path: only http(s); no loopback, private, link-local, CGNAT or
IPv4-mapped destination (checked on every redirect hop) unless `crawl.allow_private`; a
deadline for the whole response; `max_bytes` after decompression; at most 5 redirects; no
cookie or credential carried anywhere; no XML entity resolved.

The fixture server is on loopback, so a host that looks public is reached through it as a
forward proxy: `http_proxy` points at it and the crawl asks for `http://93.184.215.14/...`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from basis.xml import XML_SAFETY, safe_xml_parser
from crawler.engine.fetchguard import is_public
from tests.conftest import Cli, web_config
from tests.webserver import FixtureWeb

PUBLIC = "http://93.184.215.14"  # served by the fixture web through the proxy, never contacted
HEALTHY = {"name": "healthy", "kind": "feed", "url": "/feeds/statements.xml", "follow": False}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The guard does not depend on the database: SQLite only, to keep these crawls few."""
    return f"sqlite:///{tmp_path / 'mediawatch.db'}"


@pytest.fixture
def scratch(web: FixtureWeb) -> Iterator[Callable[[str, str], str]]:
    """Writes a fixture file for one test (→ its path on the fixture web), removed after."""
    written: list[Path] = []

    def write(name: str, text: str) -> str:
        path = web.root / "guard" / f"_{name}"
        path.write_text(text, encoding="utf-8")
        written.append(path)
        return f"/guard/_{name}"

    yield write
    for path in written:
        path.unlink()


def through_proxy(cli: Cli, web: FixtureWeb) -> None:
    """http URLs go through the fixture server as a forward proxy (a proxy on loopback)."""
    cli.env = {k: v for k, v in cli.env.items() if "proxy" not in k.lower()}
    cli.env["http_proxy"] = web.base


def crawl(cli: Cli, config: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], float]:
    """→ the crawl report per source, and how long the crawl took (seconds)."""
    cli.write_config(config)
    start = time.monotonic()
    result = cli("crawl", "--json")
    elapsed = time.monotonic() - start
    assert "Traceback" not in result.err, result.err
    return {s["source"]: s for s in result.json()["sources"]}, elapsed


def stored_bytes(cli: Cli) -> bytes:
    return Path(cli.db.removeprefix("sqlite:///")).read_bytes()


@pytest.mark.parametrize("address, public", [
    ("93.184.215.14", True), ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("::1", False),
    ("fe80::1", False), ("fc00::1", False), ("fec0::1", False), ("::ffff:127.0.0.1", False),
    ("::ffff:10.0.0.1", False), ("224.0.0.1", False),
    # IPv6 carrying IPv4: NAT64 (DNS64), local-use NAT64, 6to4, IPv4-compatible
    ("64:ff9b::a00:1", False), ("64:ff9b::7f00:1", False), ("64:ff9b::5db8:d70e", True),
    ("64:ff9b:1::5db8:d70e", False), ("2002:a00:1::1", False), ("2002:5db8:d70e::1", True),
    ("::127.0.0.1", False), ("::", False),
])
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_private_destinations_are_refused_by_default(cli: Cli, web: FixtureWeb, host: str) -> None:
    port = web.base.rsplit(":", 1)[1]
    config = web_config(web, {"name": "local", "kind": "feed",
                              "url": f"http://{host}:{port}/feeds/statements.xml"})
    config["crawl"]["allow_private"] = False
    cli.write_config(config)
    result = cli("crawl", "--json")
    assert result.code == 1
    assert result.json()["sources"][0]["status"] == "failed"
    assert "(set crawl.allow_private to fetch it)" in result.json()["sources"][0]["message"]
    assert web.log == [], "a refused destination was contacted"


@pytest.mark.parametrize("allow_private", [False, True])
def test_a_host_name_that_does_not_resolve_is_a_dns_failure(cli: Cli, web: FixtureWeb,
                                                            allow_private: bool) -> None:
    """The resolver's error, whatever allow_private is: a DNS failure never suggests
    lowering the guard (that is for a host that resolves to private addresses only)."""
    report, _ = crawl(cli, web_config(web, {"name": "nowhere", "kind": "feed",
                                            "url": "http://nowhere.invalid/feed.xml"},
                                      allow_private=allow_private))
    message = report["nowhere"]["message"]
    assert message.startswith("DNS lookup of nowhere.invalid failed: "), message
    assert "allow_private" not in message and "public" not in message


def test_other_schemes_are_refused_even_when_private_is_allowed(cli: Cli, web: FixtureWeb,
                                                                tmp_path) -> None:
    # a sitemap: a feed item whose link is not http(s) never gets this far (spiders/feed.py)
    sitemap = web.root / "sitemaps" / "_file_link.xml"
    sitemap.write_text('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url>'
                       f'<loc>file://{tmp_path}/secret.html</loc></url></urlset>')
    (tmp_path / "secret.html").write_text("<p>SECRET-CONTENT</p>")
    try:
        cli.write_config(web_config(web, {"name": "f", "kind": "sitemap",
                                          "url": "/sitemaps/_file_link.xml"}))
        result = cli("crawl", "--json")
        assert "refused file: URL" in result.json()["sources"][0]["message"]
        assert "SECRET-CONTENT" not in cli("articles", "list", "--json").out
    finally:
        sitemap.unlink()


def test_redirects_and_links_to_private_destinations_are_refused_before_any_connection(
        cli: Cli, web: FixtureWeb, tmp_path: Path) -> None:
    (tmp_path / "secret.xml").write_text(
        '<rss version="2.0"><channel><title>s</title><item><title>FILE-SECRET-0451</title>'
        '<link>http://93.184.215.14/x.html</link></item></channel></rss>')
    port = web.base.rsplit(":", 1)[1]
    redirect = f"{PUBLIC}/redirect-to?url="
    through_proxy(cli, web)
    report, _ = crawl(cli, web_config(
        web, dict(HEALTHY, url=f"{PUBLIC}/feeds/statements.xml"),
        {"name": "to-loopback", "kind": "feed",
         "url": f"{redirect}http://127.0.0.1:{port}/guard/target.xml"},
        {"name": "to-localhost", "kind": "feed",
         "url": f"{redirect}http://localhost:{port}/guard/target.xml"},
        {"name": "to-mapped", "kind": "feed",
         "url": f"{redirect}http://[::ffff:127.0.0.1]:{port}/guard/target.xml"},
        {"name": "to-file", "kind": "feed", "url": f"{redirect}file://{tmp_path}/secret.xml"},
        {"name": "links", "kind": "feed", "url": f"{PUBLIC}/guard/links.xml"},
        allow_private=False))

    assert report["healthy"]["status"] == "ok" and report["healthy"]["new"] == 3
    for name, refused in [("to-loopback", "127.0.0.1: not a public address"),
                          ("to-localhost", "localhost: it resolves to 127.0.0.1"),
                          ("to-mapped", "::ffff:127.0.0.1: not a public address"),
                          ("to-file", "a file: URL")]:
        assert report[name]["status"] == "failed", name
        assert f"refused a redirect to {refused}" in report[name]["message"], report[name]
    # links found in content: the public page stored, 6 refused (skipped for good, not
    # retried each poll); the ftp: one never leaves the feed parser (skipped too, and named
    # in its warning)
    links = report["links"]
    assert (links["new"], links["skipped"], links["errors"]) == (1, 7, 0), links
    assert "refused" in links["message"] and "1 of 8 items skipped" in links["message"]
    assert web.hits("/guard/page.html")[0].path == f"{PUBLIC}/guard/page.html"

    assert web.hits("/guard/target.xml") == [], "a refused destination was contacted"
    assert [h.path for h in web.log if not h.path.startswith(f"{PUBLIC}/")] == [], \
        "something other than the public host was asked for (robots.txt included)"
    stored = stored_bytes(cli)
    assert b"LOOPBACK-TARGET-5150" not in stored and b"FILE-SECRET-0451" not in stored


def patience(timeout: float) -> float:
    """How long a crawl whose fetches are each cut off after `timeout` seconds may take on
    a loaded 2-core machine: two attempts (one retry) with room to spare, and start-up."""
    return 10 * timeout + 20


def test_drip_response_is_cut_off_at_the_deadline(cli: Cli, web: FixtureWeb) -> None:
    # one byte every 0.5 s for 120 bytes: never idle, a minute to complete
    report, elapsed = crawl(cli, web_config(
        web, HEALTHY, {"name": "drip", "kind": "feed", "url": "/drip/0.5/120"}, timeout=1))
    assert elapsed < patience(1) < 60, f"the crawl waited {elapsed:.0f}s for a dripping server"
    assert report["drip"]["status"] == "failed"
    assert report["drip"]["error_class"] == "Timeout"
    assert "in time" in report["drip"]["message"]
    assert report["healthy"]["status"] == "ok" and report["healthy"]["new"] == 3


def test_compression_bombs_are_cut_off_at_max_bytes(cli: Cli, web: FixtureWeb) -> None:
    # 32 MB of XML in a few kB (br: 68 bytes) on the wire, max_bytes 1 MB
    encodings = ("gzip", "deflate", "br", "zstd")
    report, _ = crawl(cli, web_config(
        web, HEALTHY, *[{"name": f"bomb-{e}", "kind": "feed", "url": f"/bomb/{e}/32"}
                        for e in encodings], max_bytes=1_000_000))
    for encoding in encodings:
        bomb = report[f"bomb-{encoding}"]
        assert bomb["status"] == "failed", bomb
        assert "decompress" in bomb["message"], bomb
    assert all(set(encodings) <= set(h.headers["accept-encoding"].split(", ")) for h in web.log)
    assert report["healthy"]["status"] == "ok" and report["healthy"]["new"] == 3
    assert len(stored_bytes(cli)) < 2_000_000


def test_redirects_are_capped_and_carry_no_cookie_or_credentials(cli: Cli,
                                                                 web: FixtureWeb) -> None:
    port = web.base.rsplit(":", 1)[1]
    other_origin = f"http://localhost:{port}/feeds/coverage.atom"
    report, _ = crawl(cli, web_config(
        web,
        {"name": "five", "kind": "feed", "url": "/redirect/5/feeds/statements.xml",
         "follow": False},
        {"name": "six", "kind": "feed", "url": "/redirect/6/feeds/empty.xml"},
        {"name": "cookie", "kind": "feed", "follow": False,
         "url": f"/set-cookie?url=/set-cookie?url={other_origin}"},
        {"name": "credentials", "kind": "feed",
         "url": f"http://reader:hunter2@127.0.0.1:{port}/feeds/syndication.xml"}))

    assert report["five"]["status"] == "ok" and report["five"]["new"] == 3
    assert report["six"]["status"] == "failed"
    assert report["six"]["message"] == "max redirections reached"
    assert len(web.hits("/redirect/6/feeds/empty.xml")) == 1
    assert web.hits("/redirect/1/feeds/empty.xml") and not web.hits("/feeds/empty.xml")

    assert report["cookie"]["status"] == "ok"
    assert [h.headers.get("host") for h in web.hits("/feeds/coverage.atom")] == \
        [f"localhost:{port}"]
    assert report["credentials"]["status"] == "failed"
    assert "refused a URL with credentials" in report["credentials"]["message"]
    assert "hunter2" not in str(report["credentials"])
    assert web.hits("/feeds/syndication.xml") == []
    assert [h for h in web.log if {"cookie", "authorization"} & set(h.headers)] == []


XXE_ITEM = ('<rss version="2.0"><channel><title>t</title><item><title>before &{0}; after</title>'
            '<link>http://93.184.215.14/{1}.html</link><description>&{0};</description>'
            '</item></channel></rss>')
LAUGHS = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))


def test_xml_entities_are_never_resolved(cli: Cli, web: FixtureWeb, tmp_path: Path,
                                         scratch: Callable[[str, str], str]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("ENTITY-SECRET-8086")
    feeds = {
        "xxe": f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file://{secret}">'
               '\n]>\n' + XXE_ITEM.format("xxe", 1),
        "xxe-inline": f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM '
                      f'"file://{secret}">]>' + XXE_ITEM.format("xxe", 2),
        "xxe-parameter": f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY % p SYSTEM '
                         f'"file://{secret}">\n%p;\n]>\n' + XXE_ITEM.format("xxe", 3),
        "laughs": f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol0 "lol">\n{LAUGHS}]>\n'
                  + XXE_ITEM.format("lol9", 4),
    }
    report, elapsed = crawl(cli, web_config(
        web, *[{"name": name, "kind": "feed", "url": scratch(f"{name}.xml", text),
                "follow": False} for name, text in feeds.items()]))
    assert {n: r["items"] for n, r in report.items()} == dict.fromkeys(feeds, 1)  # still read
    stored = stored_bytes(cli)
    assert b"ENTITY-SECRET-8086" not in stored
    assert b"lollollol" not in stored and len(stored) < 1_000_000
    assert elapsed < 30


def test_a_feed_body_naming_a_local_file_is_not_read(cli: Cli, web: FixtureWeb, tmp_path: Path,
                                                     scratch: Callable[[str, str], str]) -> None:
    local = tmp_path / "local-feed.xml"
    local.write_text('<rss version="2.0"><channel><title>l</title><item>'
                     '<title>LOCAL-FILE-SECRET-1337</title><link>http://93.184.215.14/l.html'
                     '</link></item></channel></rss>')
    crawl(cli, web_config(web, {"name": "path", "kind": "feed", "follow": False,
                                "url": scratch("path.xml", str(local))}))
    assert b"LOCAL-FILE-SECRET-1337" not in stored_bytes(cli)


def test_safe_xml_parser_resolves_no_entity(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("PARSER-SECRET-2600")
    xxe = (f'<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file://{secret}">]>'
           '<urlset><url><loc>&xxe;</loc></url></urlset>').encode()
    laughs = (f'<!DOCTYPE urlset [<!ENTITY lol0 "lol">{LAUGHS}]>'
              '<urlset><url><loc>&lol9;</loc></url></urlset>').encode()
    resolving = etree.XMLParser(resolve_entities=True)
    assert "PARSER-SECRET" in "".join(etree.fromstring(xxe, resolving).itertext())  # real XXE

    path = tmp_path / "doc.xml"
    for document in (xxe, laughs):
        path.write_bytes(document)
        try:
            texts = ["".join(etree.fromstring(document, safe_xml_parser()).itertext()),
                     "".join(el.text or "" for _, el in etree.iterparse(path, **XML_SAFETY))]
        except etree.XMLSyntaxError as exc:  # libxml2 >= 2.13 refuses billion laughs outright
            assert document is laughs and "amplification" in str(exc)
            continue
        assert not [t for t in texts if "PARSER-SECRET" in t or "lollol" in t]
