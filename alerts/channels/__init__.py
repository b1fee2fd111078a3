"""Delivery channels: one file each, all with the `Channel` interface of `base.py`.

    email.py     SMTP (STARTTLS / implicit TLS), text + HTML from templates/, threaded
    slack.py     Slack incoming webhook, Block Kit, rate-limited to one message a second
    apprise.py   any Apprise URL (Telegram, Discord, ntfy, JSON webhooks, …)
    jsonl.py     one JSON object per alert appended to a file
    console.py   readable output on stdout (rich)
    render.py    what they share: the alert as shown, highlights, headlines, templates
    settings.py  each channel's entry in config.yaml, checked as the channel will use it

`build_channel(name, settings)` turns a validated entry into a channel; a bad endpoint
raises `ValueError` whose message names no secret. `open_channels` builds each on its own.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

from alerts.channels.base import AlertItem, AlertMessage, Channel, DeliveryResult, UnbuiltChannel
from alerts.channels.settings import (
    AppriseSettings,
    ChannelSettings,
    ConsoleSettings,
    EmailSettings,
    JsonlSettings,
    SlackSettings,
)
from basis.secrets import hushed

__all__ = ["AlertItem", "AlertMessage", "Channel", "DeliveryResult", "build_channel",
           "build_channels", "open_channels"]
log = logging.getLogger(__name__)


def build_channel(name: str, settings: ChannelSettings) -> Channel:
    """The channel for one `channels:` entry of config.yaml. Each channel's module loads
    here, when a config uses it (requests and Apprise take a while to import)."""
    if isinstance(settings, EmailSettings):
        from alerts.channels.email import EmailChannel
        return EmailChannel(settings.url.get_secret_value(), settings.sender, settings.to,
                            name=name)
    if isinstance(settings, SlackSettings):
        from alerts.channels.slack import SlackChannel
        return SlackChannel(settings.webhook.get_secret_value(), name=name)
    if isinstance(settings, AppriseSettings):
        from alerts.channels.apprise import AppriseChannel
        return AppriseChannel(settings.url.get_secret_value(), name=name)
    if isinstance(settings, JsonlSettings):
        from alerts.channels.jsonl import JsonlChannel
        return JsonlChannel(settings.path, name=name)
    if isinstance(settings, ConsoleSettings):
        from alerts.channels.console import ConsoleChannel
        return ConsoleChannel(name=name)
    raise TypeError(f"channel {name!r}: unknown channel settings {type(settings).__name__}")


def build_channels(settings: Mapping[str, ChannelSettings]) -> dict[str, Channel]:
    """Every channel; the first that cannot be built raises ValueError (naming no secret)."""
    return {name: build_channel(name, entry) for name, entry in settings.items()}


def open_channels(settings: Mapping[str, ChannelSettings]) -> dict[str, Channel]:
    """Every channel, each built on its own: one that cannot be built is logged (by name,
    without secrets) and stands in as an `UnbuiltChannel` whose alerts wait; the others
    deliver as usual."""
    channels: dict[str, Channel] = {}
    for name, entry in settings.items():
        try:
            with hushed("apprise"):  # Apprise logs a URL it cannot load, secrets and all
                channels[name] = build_channel(name, entry)
        except Exception as exc:  # noqa: BLE001 — one bad channel must not stop the others
            reason = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
            log.error("channel %s cannot be built, its alerts wait: %s", name, reason)
            channels[name] = UnbuiltChannel(name, reason)
    return channels
