"""The daemon's HTTP side over real HTTP, served in this process on its reactor
(crawler.engine.reactor) as the daemon serves it: /healthz, /metrics after real polls of the
fixture web, and the per-topic Atom and JSON feeds, on SQLite and PostgreSQL."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import feedparser
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from basis.clock import utcnow
from crawler.config import Config, Topic, parse_config
from crawler.daemon.metrics import Metrics
from crawler.daemon.site import listen, parse_address, site
from crawler.daemon.web import is_loopback
from crawler.daemon.web.feeds import atom_feed
from crawler.engine.reactor import install, run_on_reactor
from crawler.engine.report import SourceReport
from crawler.engine.runner import run_crawl
from storage import repository as repo
from storage.db import engine_of, open_database
from storage.models import Alert
from tests.conftest import web_config
from tests.webserver import FixtureWeb

TOPIC = "espionage-warnings"
HOSTILE = '<script>alert(1)</script> & "quotes"'
ORIGINAL = "https://wire.example/2026/11/warning?id=1&lang=en"
COPY = "https://mirror.example/copy-of-warning"
SNIPPET = "… the <b>state security</b> ministry & students …"
CONFIG = {"topics": [{"name": TOPIC, "query": '"state security" AND student*'},
                     {"name": "quiet", "query": "nothing"}]}


Sample = tuple[str, tuple[tuple[str, str], ...]]  # a metric's name and sorted labels


def fixture_feed(name: str, file: str) -> dict[str, str]:
    return {"name": name, "kind": "feed", "url": f"/feeds/{file}"}


def item(url: str, title: str, body: str) -> repo.NewArticle:
    return repo.NewArticle(url=url, canonical_url=url, seen_url=url, title=title, text=body,
                           summary="", language="en", published_at=None,
                           date_is_estimated=True, text_hash=f"h:{body}")


def alert(key: str, article_id: int, story_id: int | None, channel: str, status: str) -> Alert:
    return Alert(idempotency_key=key, topic=TOPIC, channel=channel, story_id=story_id,
                 article_id=article_id, status=status)


def fill(db: sessionmaker[Session]) -> dict[str, int]:
    """A matched original with a hostile title and a near-copy seen elsewhere, a later match
    whose title XML cannot hold, alerts in two channels, a source that keeps failing."""
    evidence = {TOPIC: {"snippet": SNIPPET, "spans": [["text", 6, 20, "state security"]]}}
    with db.begin() as session:
        repo.sync_sources(session, [repo.SourceDef("wire", "feed", "https://wire.example/f"),
                                    repo.SourceDef("mirror", "feed", "https://mirror.example/f")])
    with db.begin() as session:
        original, _ = repo.add_article(session, item(ORIGINAL, HOSTILE, "state security"), "wire")
        copy, _ = repo.add_article(session, item(COPY, "copy", "state security too"), "mirror",
                                   place=lambda: repo.Placement(duplicate_of=original.id))
        later, _ = repo.add_article(session, item("https://wire.example/later", "tab\x0bbed",
                                                  "later"), "wire")
        for article in (original, copy, later):
            repo.add_matches(session, article, evidence)
        session.add_all([alert("a1", original.id, original.story_id, "desk", "pending"),
                         alert("a2", later.id, later.story_id, "desk", "pending"),
                         alert("a3", copy.id, original.story_id, "desk", "sent"),
                         alert("a4", original.id, original.story_id, "slack", "failed")])
        repo.record_poll(session, "wire", None, (None, None))
        for _ in range(2):
            repo.record_failure(session, "mirror", "HTTP 503")
        return {"original": original.id, "later": later.id, "story": original.story_id}


@dataclass
class Served:
    base: str

    def get(self, path: str) -> requests.Response:
        return requests.get(self.base + path, timeout=10)


@contextmanager
def serving(db: sessionmaker[Session], config: Config, metrics: Metrics,
            scheduler_alive: Callable[[], bool] = lambda: True,
            loopback: bool = True) -> Iterator[Served]:
    """The daemon's site on a free loopback port of this process's reactor (`loopback`:
    False serves it as a daemon listening beyond loopback would)."""
    port = run_on_reactor(lambda: listen(
        install(), site(db, lambda: config, metrics, scheduler_alive, loopback), "127.0.0.1:0"))
    try:
        yield Served(f"http://127.0.0.1:{port.getHost().port}")
    finally:
        run_on_reactor(port.stopListening)


@dataclass
class Filled:
    db: sessionmaker[Session]
    ids: dict[str, int]


@pytest.fixture
def filled(db_url: str) -> Iterator[Filled]:
    db = open_database(db_url)
    yield Filled(db, fill(db))
    engine_of(db).dispose()


@pytest.fixture
def serve(filled: Filled) -> Iterator[Callable[..., Served]]:
    """Serves the filled database with CONFIG's topics (`metrics`: fed by the test)."""
    config = parse_config(yaml.safe_dump(CONFIG), env={})
    with ExitStack() as servers:

        def start(metrics: Metrics | None = None,
                  scheduler_alive: Callable[[], bool] = lambda: True) -> Served:
            return servers.enter_context(serving(filled.db, config, metrics or Metrics(filled.db),
                                                 scheduler_alive))

        yield start


def samples(text: str) -> dict[Sample, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(name: str, **labels: str) -> Sample:
    return name, tuple(sorted(labels.items()))


def test_healthz_is_ok_while_the_scheduler_runs(serve) -> None:
    response = serve().get("/healthz")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "role": "leader", "scheduler": True,
                               "database": True}


def test_healthz_is_503_when_the_scheduler_is_dead(serve) -> None:
    response = serve(scheduler_alive=lambda: False).get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "failing", "role": "leader", "scheduler": False,
                               "database": True,
                               "failing": ["scheduler"]}


def test_healthz_is_503_naming_the_database_when_it_is_unreachable() -> None:
    unreachable = sessionmaker(create_engine("postgresql+psycopg://postgres@127.0.0.1:1/test"))
    with serving(unreachable, Config(), Metrics(unreachable)) as server:
        response = server.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "failing", "role": "leader", "scheduler": True,
                               "database": False,
                               "failing": ["database"]}


def polls(config: dict[str, Any], db: sessionmaker[Session], metrics: Metrics) -> list[SourceReport]:
    """One crawl, each source's poll counted as the daemon counts it when the poll ends."""
    parsed = parse_config(yaml.safe_dump(config | CONFIG), env={})
    tallies = list(run_crawl(parsed, db).sources.values())
    for tally in tallies:
        metrics.observe_poll(tally, (utcnow() - tally.started_at).total_seconds())
    return tallies


def test_metrics_count_real_polls_and_read_the_outbox_and_sources(
        serve, filled: Filled, web: FixtureWeb) -> None:
    flight = {"statements": 1}
    metrics = Metrics(filled.db, in_flight=lambda: flight)
    first = web_config(web, fixture_feed("statements", "statements.xml"),
                       fixture_feed("coverage", "coverage.atom"),
                       fixture_feed("gone", "missing.xml"))
    again = web_config(web, fixture_feed("statements", "statements.xml"),
                       fixture_feed("reprints", "reprints.xml"),
                       fixture_feed("syndication", "syndication.xml"),
                       {"name": "down", "kind": "feed", "url": "/status/503"})
    done = polls(first, filled.db, metrics) + polls(again, filled.db, metrics)
    assert sorted((t.name, t.status, t.http_status) for t in done) == [
        ("coverage", "ok", 200), ("down", "failed", 503), ("gone", "failed", 404),
        ("reprints", "ok", 200), ("statements", "ok", 200), ("statements", "unchanged", 304),
        ("syndication", "ok", 200)]
    assert all(sum(getattr(t, figure) for t in done) > 0
               for figure in ("new", "known", "duplicates", "matches"))

    server = serve(metrics)
    response = server.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    expected: Counter[Sample] = Counter()
    for t in done:
        expected[sample("mediawatch_polls_total", source=t.name, status=t.status)] += 1
        expected[sample("mediawatch_http_responses_total", source=t.name,
                        **{"class": f"{t.http_status // 100}xx"})] += 1
        for outcome, count in (("new", t.new), ("known", t.known), ("duplicate", t.duplicates)):
            expected[sample("mediawatch_articles_total", source=t.name, outcome=outcome)] += count
        expected[sample("mediawatch_matches_total", source=t.name)] += t.matches
        expected[sample("mediawatch_poll_seconds_count", source=t.name)] += 1
    counted = {key: value for key, value in found.items()
               if key[0] in {name for name, _ in expected}}
    assert counted == expected
    assert all(found[sample("mediawatch_poll_seconds_sum", source=t.name)] > 0 for t in done)

    assert found[sample("mediawatch_alerts", channel="desk", status="pending")] == 2
    assert found[sample("mediawatch_alerts", channel="desk", status="sent")] == 1
    assert found[sample("mediawatch_alerts", channel="slack", status="failed")] == 1
    assert found[sample("mediawatch_alerts", channel="slack", status="pending")] == 0
    assert found[sample("mediawatch_source_in_flight", source="statements")] == 1
    for source, failures in (("mirror", 2), ("gone", 1), ("down", 1), ("wire", 0),
                             ("statements", 0)):
        assert found[sample("mediawatch_source_consecutive_failures", source=source)] == failures
    assert found[sample("mediawatch_source_last_success_timestamp_seconds", source="wire")] > 0
    assert sample("mediawatch_source_last_success_timestamp_seconds", source="mirror") \
        not in found
    assert found[sample("mediawatch_database_up")] == 1
    assert 'mediawatch_alerts{channel="desk",status="pending"} 2.0' in response.text

    flight.clear()  # the poll ended: sampled again at the next scrape
    after = samples(server.get("/metrics").text)
    assert after[sample("mediawatch_source_in_flight", source="statements")] == 0


def test_atom_feed_escapes_hostile_text_and_parses(serve, filled) -> None:
    ids = filled.ids
    response = serve().get(f"/topics/{TOPIC}.atom")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/atom+xml")
    assert b"<script>" not in response.content  # escaped on the wire
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.feed.id == f"urn:mediawatch:topic:{TOPIC}"
    later, original = feed.entries  # newest first; the near-copy is not an entry
    assert later.title == "tabbed"  # a character XML cannot hold is dropped
    assert original.title == HOSTILE
    assert original.id == f"urn:mediawatch:article:{ids['original']}"
    assert original.link == ORIGINAL
    assert [link.href for link in original.links] == [ORIGINAL]
    assert original.content[0].type == "text/plain"
    text = original.content[0].value
    assert text.startswith(SNIPPET) and f"mirror: {COPY}" in text and f"wire: {ORIGINAL}" in text
    assert original.tags[0].term == str(ids["story"])
    assert original.updated_parsed is not None


def test_atom_entries_link_only_to_http_urls() -> None:
    now = datetime(2026, 11, 27, tzinfo=timezone.utc)
    entries = [{"article_id": i, "title": f"t{i}", "canonical_url": url, "published_at": None,
                "first_seen_at": now, "source": "wire", "story_id": None, "snippet": "",
                "sightings": []}
               for i, url in enumerate(["javascript:alert(1)", "https://example.org/a"])]
    feed = feedparser.parse(atom_feed(Topic(name="t", query="a"), entries))
    assert not feed.bozo
    assert [[link.href for link in e.get("links", [])] for e in feed.entries] == [
        [], ["https://example.org/a"]]


def test_json_feed_has_stories_sightings_and_first_seen_times(serve, filled) -> None:
    ids = filled.ids
    response = serve().get(f"/topics/{TOPIC}.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()
    assert document["topic"] == TOPIC and document["query"] == CONFIG["topics"][0]["query"]
    assert [m["article_id"] for m in document["matches"]] == [ids["later"], ids["original"]]
    match = document["matches"][1]
    assert match["story_id"] == ids["story"] and match["title"] == HOSTILE
    assert match["canonical_url"] == ORIGINAL and match["source"] == "wire"
    assert match["snippet"] == SNIPPET and match["published_at"] is None
    assert match["first_seen_at"].endswith("+00:00")
    assert [(s["source"], s["url"]) for s in match["sightings"]] == [("wire", ORIGINAL),
                                                                       ("mirror", COPY)]
    assert all(s["seen_at"].endswith("+00:00") for s in match["sightings"])


def test_unknown_paths_and_topics_are_404(serve) -> None:
    server = serve()
    assert server.get("/topics/quiet.json").json()["matches"] == []
    assert not feedparser.parse(server.get("/topics/quiet.atom").content).bozo
    for path in ("/topics/nope.atom", "/topics/Quiet.atom", "/topics/nope.json",
                 "/healthz/x"):
        response = server.get(path)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"] == "application/json", path
        assert "error" in response.json(), path
    for path in ("/topics/quiet.xml", "/topics/quiet.atom/x", "/topics", "/nothing"):
        response = server.get(path)  # the reading room's: a page that says so
        assert response.status_code == 404, path
        assert response.headers["Content-Type"].startswith("text/html"), path
        assert "Not Found" in response.text, path


def test_metrics_survive_an_unreachable_database(tmp_path: Path) -> None:
    gone = sessionmaker(create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}"))
    found = samples(Metrics(gone).render().decode())
    assert found["mediawatch_database_up", ()] == 0
    assert not any(name == "mediawatch_alerts" for name, _ in found)


def test_in_flight_is_sampled_and_a_finished_source_reads_zero(tmp_path: Path) -> None:
    counts = {"a": 2}
    metrics = Metrics(open_database(f"sqlite:///{tmp_path / 'x.db'}"), in_flight=lambda: counts)
    metrics.sample()
    counts = {"b": 1}
    metrics.sample()
    found = samples(metrics.render().decode())
    assert found["mediawatch_source_in_flight", (("source", "a"),)] == 0
    assert found["mediawatch_source_in_flight", (("source", "b"),)] == 1


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1:8787", ("127.0.0.1", 8787)), ("[::1]:8787", ("::1", 8787)),
    ("localhost:0", ("localhost", 0)), ("0.0.0.0:80", ("0.0.0.0", 80))])
def test_listen_addresses(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["8787", ":8787", "::1:8787", "[nope]:1", "host:99999",
                                     "host:port", "[::1]8787"])
def test_bad_listen_addresses_are_clear_errors(address: str) -> None:
    with pytest.raises(ValueError, match="invalid listen address"):
        parse_address(address)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_beyond_loopback_without_a_token_only_health_and_metrics_are_served(
        filled: Filled) -> None:
    config = parse_config(yaml.safe_dump(CONFIG), env={})
    with serving(filled.db, config, Metrics(filled.db), loopback=False) as server:
        assert server.get("/healthz").status_code == 200
        assert server.get("/metrics").status_code == 200
        for path in ("/", f"/topics/{TOPIC}.atom", f"/stories/{filled.ids['story']}",
                     "/signin", "/static/style.css"):
            refused = server.get(path)
            assert refused.status_code == 404, path
            assert "web.token" in refused.json()["error"], path


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_beyond_loopback_with_a_token_the_pages_ask_for_it(filled: Filled) -> None:
    token = "t" * 24
    config = parse_config(yaml.safe_dump({**CONFIG, "web": {"token": "${WEB_TOKEN}"}}),
                          env={"WEB_TOKEN": token})
    with serving(filled.db, config, Metrics(filled.db), loopback=False) as server:
        front = requests.get(server.base + "/", timeout=10, allow_redirects=False)
        assert front.status_code == 303 and front.headers["Location"].startswith("/signin")
        assert server.get(f"/topics/{TOPIC}.atom").status_code == 403
        assert server.get(f"/topics/{TOPIC}.atom?token={token}").status_code == 200
        assert server.get("/healthz").status_code == 200


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.4", False), ("example.org", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
