"""Any Apprise URL (tgram://, discord://, ntfy://, json://, …) through the apprise library.

The title is the alert's one-line subject and the body the same plain text as the email's
text part, sent as `NotifyFormat.TEXT` so each Apprise plugin escapes it for its service.
Broadcast mentions (`@everyone`, `@here`, `<@…>`) and Markdown links (`[text](url)`) in web
text are defused with a zero-width space. Apprise only reports success or failure: a failure
is a retry whose reason is the last warning Apprise logged, with the URL's secrets masked.
"""
from __future__ import annotations

import logging
import re
from urllib.parse import unquote, urlsplit

import apprise

from alerts.channels.base import AlertMessage, DeliveryResult
from alerts.channels.render import render, view
from basis.secrets import Redactor, mask_url
from basis.text import clip

_MENTION = re.compile(r"@(?=(?:everyone|here|channel|all)\b)|(?<=<)(?=[@#!])", re.IGNORECASE)
_MASKED_LINK = re.compile(r"\](?=\()")  # Markdown's [text](url): Discord, Mattermost…
_SECRET_PART = re.compile(r"[^/?#&=:@]+")


class AppriseChannel:
    kind = "apprise"
    min_interval = 0.0  # Apprise plugins throttle themselves per service

    def __init__(self, url: str, *, name: str = "apprise") -> None:
        self.name = name
        self._url = url
        self._apprise = apprise.Apprise(asset=apprise.AppriseAsset(app_id="mediawatch",
                                                                   app_desc="mediawatch"))
        if not self._apprise.add(url):
            scheme = url.split("://", 1)[0] if "://" in url else ""
            raise ValueError(f"apprise channel: not a supported Apprise URL "
                             f"(scheme {scheme[:20]!r})")

    def masked(self) -> str:
        """Apprise's privacy URL keeps secret paths and topics (`json://host/hook/TOKEN`,
        `ntfy://TOPIC`): it is masked once more, as every channel's URL is."""
        return mask_url(self._apprise[0].url(privacy=True).split("?", 1)[0])

    def __repr__(self) -> str:
        return f"AppriseChannel({self.name!r}, {self.masked()!r})"

    def send(self, message: AlertMessage) -> DeliveryResult:
        alert = view(message)
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as log:
            ok = self._apprise.notify(title=defuse(alert.subject),
                                      body=defuse(render("email.txt", alert)),
                                      body_format=apprise.NotifyFormat.TEXT)
            logged = log.getvalue()
        if ok:
            return DeliveryResult.sent(f"sent via {self.masked()}")
        lines = [line for line in logged.splitlines() if line.strip()]
        detail = f": {clip(lines[-1].strip(), 300)}" if lines else ""
        return DeliveryResult.retry(self._reason(f"apprise could not deliver to "
                                                 f"{self.masked()}{detail}"))

    def _reason(self, text: str) -> str:
        """`text` with every part of the URL that may be a token masked (users, passwords,
        hosts that are tokens, path segments, query values) but those the masked URL shows."""
        masked = self.masked()
        parts = urlsplit(self._url)
        secrets = [unquote(p) for p in _SECRET_PART.findall(self._url.split("://", 1)[-1])
                   if len(p) >= 6 and p not in masked] + [self._url,
                                                           unquote(parts.password or "")]
        return Redactor(secrets)(text)


def defuse(text: str) -> str:
    """Mentions that would notify a whole channel, and links that would show other text
    than their URL, made inert with a zero-width space."""
    return _MASKED_LINK.sub("]\u200b", _MENTION.sub(lambda m: m.group() + "\u200b", text))
