"""The archive: the exact bytes each article was read from, written back by
`articles show --raw` and `archive export` (a WARC file), pruned after archive.retention."""
from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from warcio.archiveiterator import ArchiveIterator
from warcio.timeutils import datetime_to_iso_date

from basis.clock import utcnow
from basis.secrets import Redactor
from crawler.config import load_config
from crawler.daemon.service import Daemon
from storage.db import open_database
from storage.models import Article, Capture
from tests.conftest import Cli, web_config
from tests.webserver import FixtureWeb

CHARSETS = {"name": "charsets", "kind": "feed", "url": "/feeds/charset.xml"}
STATEMENTS = {"name": "statements", "kind": "feed", "url": "/feeds/statements.xml",
              "language": "zh", "follow": False}


def served(web: FixtureWeb, url: str) -> bytes:
    return (web.root / url.removeprefix(web.base + "/")).read_bytes()


def test_each_article_keeps_the_bytes_it_was_read_from(cli: Cli, web: FixtureWeb,
                                                       tmp_path: Path) -> None:
    cli.write_config(web_config(web, CHARSETS, STATEMENTS))
    assert cli("crawl").code == 0
    articles = cli("articles", "list", "--json").json()
    assert len(articles) == 8 + 3
    for article in articles:
        shown = cli("articles", "show", str(article["id"]), "--raw")
        assert shown.code == 0, shown.err
        archived = cli("articles", "show", str(article["id"]), "--json").json()["archived"]
        # a page's own bytes (GBK, Big5: undecoded); an entry not followed: its feed's
        expected = served(web, article["url"] if article["source"] == "charsets"
                          else web.url(STATEMENTS["url"]))
        assert shown.raw == expected, article["url"]
        assert archived["sha256"] == hashlib.sha256(expected).hexdigest()
        assert archived["http_status"] == 200 and archived["bytes"] == len(expected)
    with open_database(cli.db)() as session:  # the feed is kept once for its 3 entries
        assert session.scalar(select(func.count()).select_from(Capture)) == 8 + 1
        captures = {c.url: c for c in session.scalars(select(Capture))}

    warc = tmp_path / "out.warc.gz"
    result = cli("archive", "export", "--since", "1d", str(warc))
    assert result.code == 0, result.err
    with warc.open("rb") as stream:
        records = [(r.rec_headers, r.http_headers, r.content_stream().read())
                   for r in ArchiveIterator(stream) if r.rec_type == "response"]
    assert len(records) == len(captures)
    for warc_headers, http_headers, body in records:
        url = warc_headers.get_header("WARC-Target-URI")
        assert body == served(web, url), url  # byte for byte what the server sent
        assert http_headers.get_statuscode() == "200"
        assert http_headers.get_header("ETag")
        assert warc_headers.get_header("WARC-Date") == \
            datetime_to_iso_date(captures[url].fetched_at)


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
    with db.begin() as session:  # the statements feed was read 31 days ago
        session.execute(update(Capture).where(Capture.url.endswith("statements.xml"))
                        .values(fetched_at=utcnow() - timedelta(days=31)))
    Daemon(cli.config, cli.db, load_config(cli.config), db, None, Redactor()).retention_job()
    with db() as session:
        assert session.scalar(select(func.count()).select_from(Capture)) == 8
        assert session.scalar(select(func.count()).select_from(Article)
                              .where(Article.capture_id.is_(None))) == 3
    gone = cli("articles", "list", "--json").json()
    assert len(gone) == 11
