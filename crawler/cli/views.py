"""How stored things look to people (rich tables) and to scripts (JSON documents)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from rich.console import Console, OverflowMethod
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.style import Style
from rich.table import Table as RichTable
from rich.text import Text as RichText

from basis.dates import iso
from basis.text import printable
from crawler.engine.report import CrawlReport, SourceReport
from spiders.items import ArticleSeen, KnownLink, PageSnapshot, SourceFailed, SourcePolled
from storage.models import Alert, Article, Capture, Source, StoryLink
from storage.repository import StoryRow, sightings_count, source_health


class Text(RichText):
    """rich's Text, for text from the web: its control characters are dropped, so a title
    cannot move the cursor, recolour or clear the terminal, retitle the window or reorder
    the line (rich strips only a few)."""

    def __init__(self, text: str = "", *args: Any, **kwargs: Any) -> None:
        super().__init__(printable(text), *args, **kwargs)

    def append(self, text: str | RichText, style: str | Style | None = None) -> Text:
        super().append(printable(text) if isinstance(text, str) else text, style)
        return self


class Table(RichTable):
    """rich's Table whose cells wrap, inside a word if need be, rather than end in '…': in a
    narrow terminal a topic name or a Chinese title is folded, never cut."""

    def add_column(self, *args: Any, overflow: OverflowMethod = "fold", **kwargs: Any) -> None:
        super().add_column(*args, overflow=overflow, **kwargs)


STATUS_STYLE = {"ok": "green", "unchanged": "green", "warning": "yellow", "failed": "red",
                "failing": "red", "silent": "yellow", "pending": "dim", "never polled": "dim",
                "deferred": "yellow"}


def ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = int((datetime.now(timezone.utc) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


# ---------------------------------------------------------------- articles

def article_json(article: Article) -> dict[str, Any]:
    return {
        "id": article.id,
        "url": article.url,
        "canonical_url": article.canonical_url,
        "title": article.title,
        "source": article.source.name,
        "published_at": iso(article.published_at),
        "language": article.language,
        "story_id": article.story_id,
        "duplicate_of": article.duplicate_of,
        "copies": [copy.id for copy in article.copies],
        "sightings": sightings_count(article),
        "topics": [m.topic for m in article.matches],
        "first_seen_at": iso(article.first_seen_at),
        "date_is_estimated": article.date_is_estimated,
    }


def article_detail_json(article: Article) -> dict[str, Any]:
    return article_json(article) | {
        "text": article.text,
        "summary": article.summary,
        "highlights": {m.topic: m.highlights for m in article.matches},
        "seen_at": [{"source": s.source.name, "url": s.url, "seen_at": iso(s.seen_at)}
                    for s in article.sightings],
        "archived": capture_json(article.capture) if article.capture else None,
        "removed_at": iso(article.removed_at),  # a statement's page went away
        "versions": [{"version": v.version, "title": v.title, "text": v.text,
                      "fetched_at": iso(v.fetched_at), "sha256": v.sha,
                      "archived": capture_json(v.capture) if v.capture else None}
                     for v in article.versions],  # a statement edited: each text kept
    }


def capture_json(capture: Capture) -> dict[str, Any]:
    return {"url": capture.url, "fetched_at": iso(capture.fetched_at),
            "http_status": capture.status, "sha256": capture.sha256, "bytes": capture.size,
            "stored_bytes": len(capture.body)}


def articles_table(articles: list[Article]) -> Table:
    table = Table(title=f"{len(articles)} articles", title_justify="left", expand=False)
    for name, kw in (("id", {"justify": "right", "no_wrap": True}),
                     ("published (UTC)", {"no_wrap": True}), ("lang", {"no_wrap": True}),
                     ("source", {}), ("seen", {"justify": "right"}), ("title", {"ratio": 1}),
                     ("topics", {})):
        table.add_column(name, **kw)
    for a in articles:
        table.add_row(str(a.id), _date(a), a.language or "", a.source.name,
                      str(sightings_count(a)), _title(a), ", ".join(m.topic for m in a.matches))
    return table


def _when(value: datetime | None) -> str:
    return f"{value.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if value else "unknown"


def _date(article: Article) -> str:
    date = article.published_at.strftime("%Y-%m-%d %H:%M") if article.published_at else ""
    return date + ("~" if article.date_is_estimated else "")


def _title(article: Article) -> Text:
    """The title, marked when the article is a copy or has copies folded under it."""
    title = Text(article.title or article.url)
    if article.duplicate_of is not None:
        return Text(f"↳ copy of {article.duplicate_of} · ", style="dim") + title
    if article.copies:
        count = len(article.copies)
        title.append(f"  (+{count} {'copy' if count == 1 else 'copies'})", style="dim")
    return title


def _versions(article: Article) -> str:
    """A statement's versions, when it was edited: `1 (date), 2 (date) (texts: --json)`."""
    listed = ", ".join(f"{v.version} ({_when(v.fetched_at)})" for v in article.versions)
    return f"{listed} (texts: --json)" if listed else ""


def print_article(console: Console, article: Article) -> None:
    data = article_detail_json(article)
    console.print(Text(article.title or "(no title)", style="bold"))
    fields = {"id": str(article.id), "url": article.canonical_url, "source": data["source"],
              "published": _when(article.published_at)
              + (" (estimated)" if article.date_is_estimated else ""),
              "first seen": _when(article.first_seen_at),
              "language": article.language or "unknown",
              "copy of": "" if article.duplicate_of is None else str(article.duplicate_of),
              "topics": ", ".join(data["topics"]) or "none",
              "removed": "" if article.removed_at is None else
              f"{_when(article.removed_at)} (the page went away; below: the copy kept)",
              "versions": _versions(article)}
    for label, value in fields.items():
        if value:
            console.print(Text.assemble((f"{label:>14}: ", "dim"), value))
    for topic, evidence in data["highlights"].items():
        words = [span[3] for span in evidence.get("spans", [])]
        console.print(Text(f"\nmatched {topic}: ", style="bold")
                      + highlighted(evidence.get("snippet", ""), words))
    if article.capture is not None:
        capture = article.capture
        console.print(Text.assemble(("      archived: ", "dim"), f"{capture.url} at "
                                    f"{_when(capture.fetched_at)}, {capture.size:,} bytes, "
                                    f"sha256 {capture.sha256} ",
                                    (f"(mediawatch articles show {article.id} --raw)", "dim")))
    if article.story is not None:
        console.print(Text.assemble(("\n         story: ", "dim"), f"{article.story.headline} ",
                                    (f"(mediawatch stories show {article.story_id})", "dim")))
    if article.copies:
        console.print(Text.assemble(("        copies: ", "dim"),
                                    ", ".join(str(copy.id) for copy in article.copies)))
    console.print(Text(f"\nseen at {len(data['seen_at'])} place(s):", style="bold"))
    for sighting in article.sightings:
        console.print(Text(f"  {_when(sighting.seen_at)}  {sighting.source.name}  {sighting.url}"))
    console.print(Text("\n" + (article.text or article.summary or "(no text)")))


# ---------------------------------------------------------------- stories

def story_json(row: StoryRow) -> dict[str, Any]:
    return {"id": row.story.id, "headline": row.story.headline,
            "first_seen_at": iso(row.story.first_seen_at),
            "last_seen_at": iso(row.story.last_seen_at),
            "article_count": row.articles, "copy_count": row.copies,
            "source_count": row.sources, "lead_article_id": row.lead_article_id,
            "languages": list(row.languages), "triage": row.triage,
            "triaged_at": iso(row.triaged_at)}


def stories_table(rows: list[StoryRow]) -> Table:
    table = Table(title=f"{len(rows)} stories", title_justify="left")
    for name in ("id", "last seen", "first seen", "articles", "copies", "sources"):
        table.add_column(name, justify="left" if "seen" in name else "right", no_wrap=True)
    table.add_column("lang", no_wrap=True)
    table.add_column("triage", no_wrap=True)
    table.add_column("headline", ratio=1)
    for row in rows:
        table.add_row(str(row.story.id), ago(row.story.last_seen_at),
                      ago(row.story.first_seen_at), str(row.articles), str(row.copies),
                      str(row.sources), " ".join(row.languages), row.triage,
                      Text(row.story.headline))
    return table


def print_story(console: Console, row: StoryRow, articles: list[Article],
                links: Mapping[int, StoryLink]) -> None:
    console.print(Text(row.story.headline, style="bold"))
    data = story_json(row)
    for key in ("id", "first_seen_at", "last_seen_at", "article_count", "copy_count",
                "source_count", "lead_article_id"):
        console.print(Text.assemble((f"{key:>15}: ", "dim"), str(data[key])))
    console.print(Text.assemble((f"{'languages':>15}: ", "dim"), ", ".join(row.languages)))
    console.print(Text.assemble((f"{'triage':>15}: ", "dim"), row.triage, *(
        [(f" (marked {ago(row.triaged_at)})", "dim")] if row.triaged_at else [])))
    console.print(articles_table(articles))  # the lead first
    for article_id, link in sorted(links.items()):
        console.print(Text.assemble(
            (f"{article_id} joined {link.linked_article_id} on ", "dim"),
            ", ".join(link.evidence), (f" (score {link.score:g})", "dim")))


def link_json(link: StoryLink | None) -> dict[str, Any] | None:
    """Why an article joined its story: the report it matched and the evidence shared
    (n: figure, d: date, c: concept, p: name, q: quoted term)."""
    if link is None:
        return None
    return {"article_id": link.linked_article_id, "evidence": link.evidence,
            "score": link.score}


# ---------------------------------------------------------------- sources

def source_json(source: Source, verify_tls: bool) -> dict[str, Any]:
    return {"name": source.name, "kind": source.kind, "url": source.url,
            "verify_tls": verify_tls,
            "last_polled_at": iso(source.last_polled_at),
            "last_success_at": iso(source.last_success_at),
            "consecutive_failures": source.consecutive_failures,
            "last_error": source.last_error, "health": source_health(source),
            "last_warning": source.last_warning}


def sources_table(sources: list[Source], redact: Callable[[str], str] = str) -> Table:
    """One row per source; `redact` masks secrets (a token of its URL) in its last error."""
    table = Table(title=f"{len(sources)} sources", title_justify="left")
    for name in ("name", "kind", "health", "last polled", "last success", "failures",
                 "last error / warning"):
        table.add_column(name, justify="right" if name == "failures" else "left")
    for s in sources:
        state = source_health(s)
        table.add_row(s.name, s.kind, Text(state, style=STATUS_STYLE.get(state, "")),
                      ago(s.last_polled_at), ago(s.last_success_at),
                      str(s.consecutive_failures),
                      Text(redact(s.last_error or s.last_warning or "")))
    return table


def check_json(name: str, items: list[Any]) -> dict[str, Any]:
    """What `sources check` found: the source's answer and each entry, new or known."""
    polled = next((i for i in items if isinstance(i, SourcePolled)), None)
    failed = next((i for i in items if isinstance(i, SourceFailed)), None)
    entries = [{"url": i.entry.url, "title": i.entry.title,
                "published_at": iso(i.entry.published), "known": False}
               for i in items if isinstance(i, ArticleSeen)]
    entries += [{"url": i.url, "title": "", "published_at": None, "known": True}
                for i in items if isinstance(i, KnownLink)]
    entries += [{"url": i.page.url, "title": "(the watched page)", "published_at": None,
                 "known": False} for i in items if isinstance(i, PageSnapshot)]
    return {"source": name, "status": "failed" if failed else "ok",
            "http_status": (failed or polled).http_status if failed or polled else None,
            "message": failed.message if failed else polled.warning if polled else None,
            "skipped": polled.skipped if polled else 0,
            "waited": polled.waited if polled else 0, "entries": entries}


def print_check(console: Console, result: dict[str, Any]) -> None:
    status = result["status"]
    console.print(Text.assemble((f"{result['source']}: ", "bold"),
                                (status, STATUS_STYLE.get(status, "")),
                                f"  HTTP {result['http_status'] or '-'}  "
                                f"{result['message'] or ''}"))
    table = Table(title=f"{len(result['entries'])} entries (nothing stored)",
                  title_justify="left")
    for name in ("", "published (UTC)", "title", "url"):
        table.add_column(name)
    for entry in result["entries"]:
        table.add_row("known" if entry["known"] else "new", entry["published_at"] or "",
                      Text(entry["title"]), Text(entry["url"]))
    console.print(table)


def checks_table(results: list[dict[str, Any]]) -> Table:
    """`sources check --all`: one line per source."""
    table = Table(title=f"{len(results)} sources checked (nothing stored)", title_justify="left")
    for name in ("source", "status", "http", "entries", "new", "message"):
        table.add_column(name, justify="right" if name in ("http", "entries", "new") else "left")
    for r in results:
        table.add_row(r["source"], Text(r["status"], style=STATUS_STYLE.get(r["status"], "")),
                      str(r["http_status"] or "-"), str(len(r["entries"])),
                      str(sum(not e["known"] for e in r["entries"])), Text(r["message"] or ""))
    return table


# ---------------------------------------------------------------- crawl progress and summary

def crawl_summary(report: CrawlReport) -> Table:
    table = Table(title="crawl summary", title_justify="left")
    counts = ("requests", "items", "new", "known", "duplicates", "skipped", "waited", "matches",
              "alerts", "errors")
    for name in ("source", "status", "http", *counts, "note"):
        table.add_column(name, justify="right" if name in counts or name == "http" else "left")
    for r in report.sources.values():
        table.add_row(r.name, Text(r.status, style=STATUS_STYLE.get(r.status, "")),
                      str(r.http_status or ""), *(str(getattr(r, k)) for k in counts),
                      Text(r.message or ""))
    totals = report.totals()
    table.add_row("total", "", "", *(str(totals[k]) for k in counts), "", style="bold")
    if totals["rechecked"]:
        table.caption = f"statements re-checked: {totals['rechecked']}, edited " \
            f"{totals['edited']}, removed {totals['removed']}"
        table.caption_justify = "left"
    return table


def report_json(report: CrawlReport) -> dict[str, Any]:
    return {"sources": [source_report_json(r) for r in report.sources.values()],
            "totals": report.totals()}


def source_report_json(r: SourceReport) -> dict[str, Any]:
    return {"source": r.name, "status": r.status, "http_status": r.http_status,
            "requests": r.requests, "items": r.items, "new": r.new, "known": r.known,
            "duplicates": r.duplicates, "skipped": r.skipped, "waited": r.waited,
            "rechecked": r.rechecked, "edited": r.edited, "removed": r.removed,
            "matches": r.matches, "alerts": r.alerts, "errors": r.errors,
            "error_class": r.error_class, "message": r.message}


class CrawlProgress:
    """A progress bar on a terminal; one plain line per polled source otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.announced: set[str] = set()
        self.bar: Progress | None = None
        if console.is_terminal:
            self.bar = Progress(TextColumn("crawling"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                                console=console, transient=True)
            self.task = self.bar.add_task("crawl", total=None, note="")

    def __enter__(self) -> CrawlProgress:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()

    def update(self, report: CrawlReport) -> None:
        if self.bar:
            totals = report.totals()
            self.bar.update(self.task, total=max(report.scheduled, 1), completed=report.finished,
                            note=f"new {totals['new']} · known {totals['known']} · "
                                 f"errors {totals['errors']}")
            return
        for r in report.sources.values():
            if r.status != "pending" and r.name not in self.announced:
                self.announced.add(r.name)
                detail = f": {r.message}" if r.message else ""
                self.console.print(Text(f"polled {r.name}: {r.status}"
                                        f"{f' (HTTP {r.http_status})' if r.http_status else ''}"
                                        f"{detail}"), soft_wrap=True)


# ---------------------------------------------------------------- topics

def highlighted(text: str, words: list[str]) -> Text:
    out = Text(text)
    out.highlight_words([w for w in words if w], style="bold yellow", case_sensitive=False)
    return out


def topics_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(rows)} topics", title_justify="left")
    for name in ("name", "mode", "channels", "last day", "last week", "query"):
        table.add_column(name, justify="right" if name.startswith("last") else "left")
    for row in rows:
        table.add_row(row["name"], row["mode"], ", ".join(row["channels"]),
                      str(row["hits_last_day"]), str(row["hits_last_week"]), Text(row["query"]))
    return table


def print_backtest(console: Console, result: dict[str, Any]) -> None:
    console.print(Text(f"topic {result['topic']}: {len(result['hits'])} hits in "
                       f"{result['scanned']} articles since {result['since'] or 'the start'}",
                       style="bold"))
    console.print(Text(f"query: {result['query']}", style="dim"))
    print_hits(console, result["hits"])
    for title, counts in (("per source", result["per_source"]), ("per day", result["per_day"])):
        if counts:
            table = Table(title=title, title_justify="left")
            table.add_column(title.split()[1])
            table.add_column("hits", justify="right")
            for key, count in counts.items():
                table.add_row(key, str(count))
            console.print(table)


def print_hits(console: Console, hits: list[dict[str, Any]]) -> None:
    """Each hit: id, date, source, title, and the snippet with what matched highlighted."""
    for hit in hits:
        console.print(Text.assemble(("\n#" + str(hit["id"]), "bold"),
                                    f"  {(hit['published_at'] or '')[:16]}  {hit['source']}  ",
                                    (hit["title"], "bold")))
        spans = hit["highlights"]["spans"]
        console.print(highlighted("  " + hit["highlights"]["snippet"], [s[3] for s in spans]))
        console.print(Text("  matched: " + ", ".join(dict.fromkeys(s[3] for s in spans)),
                           style="dim"))


def print_explanation(console: Console, article: Article, clauses: list[Any]) -> None:
    console.print(Text(f"article {article.id}: {article.title}", style="bold"))
    for clause in clauses:
        mark = Text("✓ ", style="green") if clause.matched else Text("✗ ", style="red")
        evidence = ", ".join(clause.evidence[:5])
        console.print(Text("  " * clause.depth) + mark + Text(clause.label)
                      + Text(f"  [{evidence}]" if evidence else "", style="yellow"))


# ---------------------------------------------------------------- alerts

def alert_json(alert: Alert) -> dict[str, Any]:
    return {"id": alert.id, "topic": alert.topic, "channel": alert.channel,
            "story_id": alert.story_id, "article_id": alert.article_id, "status": alert.status,
            "attempts": alert.attempts, "created_at": iso(alert.created_at),
            "sent_at": iso(alert.sent_at), "last_error": alert.last_error, "kind": alert.kind,
            "next_attempt_at": iso(alert.next_attempt_at)}


def alerts_table(alerts: list[Alert]) -> Table:
    table = Table(title=f"{len(alerts)} alerts", title_justify="left")
    for name in ("id", "kind", "topic", "channel", "story", "status", "attempts", "created",
                 "sent", "last error"):
        table.add_column(name, justify="right" if name in ("id", "story", "attempts") else "left")
    for a in alerts:
        status_style = {"sent": "green", "failed": "red", "pending": "yellow"}.get(a.status, "")
        table.add_row(str(a.id), a.kind, a.topic, a.channel, str(a.story_id or ""),
                      Text(a.status, style=status_style), str(a.attempts), ago(a.created_at),
                      ago(a.sent_at) if a.sent_at else "", Text(a.last_error or ""))
    return table
