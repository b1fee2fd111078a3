"""The archive: the exact bytes each article was read from, written back by
`articles show --raw` and `archive export` (a WARC file), pruned after archive.retention."""
from __future__ import annotations

import gzip
import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from warcio.archiveiterator import ArchiveIterator
from warcio.timeutils import datetime_to_iso_date

from basis.clock import utcnow
from basis.secrets import Redactor
from crawler.config import ConfigError, load_config, parse_config
from crawler.daemon.service import Daemon
from storage import archive
from storage.db import open_database
from storage.models import Article, Capture
from tests.conftest import Cli, web_config
from tests.webserver import FixtureWeb

CHARSETS = {"name": "charsets", "kind": "feed", "url": "/feeds/charset.xml"}
STATEMENTS = {"name": "statements", "kind": "feed", "url": "/feeds/statements.xml",
              "language": "zh", "follow": False}


def test_each_article_keeps_the_bytes_it_was_read_from(cli: Cli, web: FixtureWeb,
                                                       tmp_path: Path) -> None:
    pages = web.root / "charset"
    sent = {web.url(f"/charset/{p.name}"): p.read_bytes() for p in pages.glob("*.html")}
    sent |= {web.url(s["url"]): (web.root / s["url"][1:]).read_bytes()
             for s in (CHARSETS, STATEMENTS)}
    (pages / "big5-none.html").unlink()  # gone (404): stored from its entry, with its feed
    zipped = pages / "utf8-none.html"  # sent gzipped: kept as the client decoded it
    zipped.write_bytes(gzip.compress(zipped.read_bytes()))
    zipped.with_name("utf8-none.html.headers").write_text("Content-Encoding: gzip\n")
    cli.write_config(web_config(web, CHARSETS, STATEMENTS))
    assert cli("crawl").code == 0
    articles = cli("articles", "list", "--json").json()
    assert len(articles) == 8 + 3
    from_feed = {a["url"] for a in articles if a["source"] == "statements"} | \
        {web.url("/charset/big5-none.html")}
    with open_database(cli.db)() as session:  # each feed is kept once for all its entries
        captures = {c.url: c for c in session.scalars(select(Capture))}
        read_from = {a.url: a.capture.url for a in session.scalars(select(Article))}
    assert len(captures) == 7 + 2
    for article in articles:
        # its page's bytes (GBK, Big5: undecoded); an entry stored without its page: its feed's
        assert read_from[article["url"]] == (
            web.url(CHARSETS["url"] if article["source"] == "charsets" else STATEMENTS["url"])
            if article["url"] in from_feed else article["url"])
        shown = cli("articles", "show", str(article["id"]), "--raw")
        assert shown.code == 0 and shown.raw == sent[read_from[article["url"]]], article["url"]
    archived = cli("articles", "show", str(articles[0]["id"]), "--json").json()["archived"]
    raw = sent[archived["url"]]
    assert archived["sha256"] == hashlib.sha256(raw).hexdigest() == \
        captures[archived["url"]].sha256
    assert archived["http_status"] == 200 and archived["bytes"] == len(raw)

    warc = tmp_path / "out.warc.gz"
    result = cli("archive", "export", "--since", "1d", str(warc))
    assert result.code == 0, result.err
    with warc.open("rb") as stream:
        records = [(r.rec_headers, r.http_headers, r.content_stream().read())
                   for r in ArchiveIterator(stream) if r.rec_type == "response"]
    assert len(records) == len(captures)
    for warc_headers, http_headers, body in records:
        url = warc_headers.get_header("WARC-Target-URI")
        assert body == sent[url], url  # byte for byte what the server sent
        assert http_headers.get_statuscode() == "200" and http_headers.get_header("ETag")
        assert http_headers.get_header("Content-Length") == str(len(body))
        assert http_headers.get_header("Content-Encoding") is None
        assert warc_headers.get_header("WARC-Date") == \
            datetime_to_iso_date(captures[url].fetched_at)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # (storage: as any article)
def test_archive_false_keeps_no_bytes(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, STATEMENTS) | {"archive": False})
    assert cli("crawl").code == 0
    article = cli("articles", "list", "--json").json()[0]
    shown = cli("articles", "show", str(article["id"]), "--raw")
    assert shown.code == 2 and "has no archived copy" in shown.err and shown.raw == b""
    assert cli("articles", "show", str(article["id"]), "--json").json()["archived"] is None
    with open_database(cli.db)() as session:
        assert session.scalar(select(func.count()).select_from(Capture)) == 0


def test_retention_drops_archived_bytes_and_keeps_the_articles(cli: Cli, web: FixtureWeb) -> None:
    cli.write_config(web_config(web, STATEMENTS, CHARSETS) | {"archive": {"retention": "30d"}})
    assert cli("crawl").code == 0
    db = open_database(cli.db)
    daemon = Daemon(cli.config, cli.db, load_config(cli.config), db, None, Redactor())
    month_ago = utcnow() - timedelta(days=31)
    with db.begin() as session:  # the statements feed was first read 31 days ago …
        session.execute(update(Capture).where(Capture.url.endswith("statements.xml"))
                        .values(fetched_at=month_ago))
    daemon.retention_job()
    with db() as session:  # … but articles seen since still point to it: kept
        assert session.scalar(select(func.count()).select_from(Capture)) == 9
    with db.begin() as session:  # … and so were its articles
        feed = select(Capture.id).where(Capture.url.endswith("statements.xml"))
        session.execute(update(Article).where(Article.capture_id.in_(feed))
                        .values(first_seen_at=month_ago))
    daemon.retention_job()
    with db() as session:
        assert session.scalar(select(func.count()).select_from(Capture)) == 8
        assert session.scalar(select(func.count()).select_from(Article)
                              .where(Article.capture_id.is_(None))) == 3
    gone = cli("articles", "list", "--json").json()
    assert len(gone) == 11


def test_archive_is_a_mapping_or_false() -> None:
    assert parse_config("archive: false\n", {}).archive is None
    assert parse_config("", {}).archive_retention == timedelta(days=365)
    assert parse_config("archive: {retention: 30d}\n", {}).archive_retention == timedelta(days=30)
    with pytest.raises(ConfigError) as error:
        parse_config("archive: {retention: 1y}\n", {})
    assert "archive.retention: invalid duration '1y'" in error.value.lines()[0]


def test_the_same_bytes_at_two_urls_are_two_pieces_of_evidence(db_url: str) -> None:
    db = open_database(db_url)
    now = utcnow()
    with db.begin() as session:
        read = [archive.keep(session, archive.NewCapture(url, 200, (), b"<html>Not found</html>",
                                                         now))
                for url in ("https://a.example/1", "https://a.example/2", "https://a.example/1")]
        session.flush()
        assert [c.url for c in read] == ["https://a.example/1", "https://a.example/2",
                                         "https://a.example/1"]
        assert read[0] is read[2] and read[0] is not read[1]
