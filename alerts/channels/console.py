"""The console: an alert printed readably to stdout with rich, for `demo` and local runs.

Web text only ever enters rich as `rich.text.Text` (never a markup string), after
`one_line` removed control characters (ESC sequences included); markup, emoji codes and
auto-highlighting are off, so `[bold]` or `:smile:` in a title prints as written.
"""
from __future__ import annotations

from rich.console import Console
from rich.style import Style
from rich.text import Text

from alerts.channels.base import AlertMessage, DeliveryResult
from alerts.channels.render import AlertView, ItemView, plural, view

LABEL_STYLE = {"new": "bold green", "update": "bold cyan", "digest": "bold magenta",
               "test": "bold yellow", "edited": "bold red", "removed": "bold red"}
DIFF_STYLE = {"-": "red", "+": "green"}


class ConsoleChannel:
    kind = "console"
    min_interval = 0.0

    def __init__(self, *, name: str = "console", console: Console | None = None) -> None:
        self.name = name
        self._console = console

    def masked(self) -> str:
        return "console (stdout)"

    def __repr__(self) -> str:
        return f"ConsoleChannel({self.name!r})"

    def send(self, message: AlertMessage) -> DeliveryResult:
        console = self._console or Console(markup=False, emoji=False, highlight=False,
                                           soft_wrap=True)
        try:
            for line in lines(view(message)):
                console.print(line, markup=False, emoji=False, highlight=False)
        except OSError as exc:  # a closed pipe or full disk behind stdout
            return DeliveryResult.retry(f"cannot print: {exc.strerror or type(exc).__name__}")
        return DeliveryResult.sent("printed")


def lines(alert: AlertView) -> list[Text]:
    head = Text.assemble((f" {alert.label.upper()} ", LABEL_STYLE.get(alert.kind, "bold")),
                         " ", (alert.topic, "bold"), " ", alert.headline)
    out = [Text(), head]
    if alert.story_url:
        out.append(Text("Open in mediawatch: " + alert.story_url, "blue"))
    if alert.kind == "update":
        out.append(Text(f"{plural(alert.outlets, 'outlet')} now cover this story.", "dim"))
        if alert.followed:
            out.append(Text(alert.followed, "dim"))
    for item in alert.items:
        out.extend(_item(alert, item))
    return out


def _item(alert: AlertView, item: ItemView) -> list[Text]:
    title = Text(item.title, style=Style(bold=True, link=item.url) if item.url else "bold")
    facts = [item.source, item.when]
    if alert.kind == "digest":
        facts.append(f"{plural(item.articles, 'article')} from {plural(item.outlets, 'outlet')}")
    elif alert.kind == "new" and alert.more_outlets:
        facts.append(f"+{plural(alert.more_outlets, 'more outlet')}")
    out = [Text("• ") + title, Text("  " + " · ".join(f for f in facts if f), "dim")]
    if item.url:
        out.append(Text("  " + item.url, "blue"))
    if item.story_url:
        out.append(Text("  Open in mediawatch: " + item.story_url, "blue"))
    if item.segments:
        snippet = Text("  ")
        for text, hit in item.segments:
            snippet.append(text, "bold yellow" if hit else "")
        out.append(snippet)
    out.extend(Text("    " + line, DIFF_STYLE.get(line[:1], "dim")) for line in item.diff)
    return out
