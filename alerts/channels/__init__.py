"""Delivery channels: one file each, all with the `Channel` interface of `base.py`.

    email.py    SMTP (STARTTLS / implicit TLS), text + HTML from templates/, threaded
    slack.py    Slack incoming webhook, Block Kit, rate-limited to one message a second
    apprise.py  any Apprise URL (Telegram, Discord, ntfy, JSON webhooks, …)
    jsonl.py    one JSON object per alert appended to a file
    console.py  readable output on stdout (rich)
    render.py   what they share: cleaned text, highlights, headlines, masking

`build_channel(name, config)` turns a validated config object into a channel. A bad
endpoint raises `ValueError` whose message names no secret.
"""
from __future__ import annotations

from alerts.channels.base import AlertItem, AlertMessage, Channel, DeliveryResult

__all__ = ["AlertItem", "AlertMessage", "Channel", "DeliveryResult", "build_channel"]


def build_channel(name: str, config: object) -> Channel:
    """The channel for one `channels:` entry of config.yaml, chosen by its config type."""
    from crawler import config as cfg  # here, not at the top: crawler imports alerts
    if isinstance(config, cfg.EmailChannel):
        from alerts.channels.email import EmailChannel
        return EmailChannel(config.url.get_secret_value(), config.sender, config.to, name=name)
    if isinstance(config, cfg.SlackChannel):
        from alerts.channels.slack import SlackChannel
        return SlackChannel(config.webhook.get_secret_value(), name=name)
    if isinstance(config, cfg.AppriseChannel):
        from alerts.channels.apprise import AppriseChannel
        return AppriseChannel(config.url.get_secret_value(), name=name)
    if isinstance(config, cfg.JsonlChannel):
        from alerts.channels.jsonl import JsonlChannel
        return JsonlChannel(config.path, name=name)
    if isinstance(config, cfg.ConsoleChannel):
        from alerts.channels.console import ConsoleChannel
        return ConsoleChannel(name=name)
    raise TypeError(f"channel {name!r}: unknown channel config {type(config).__name__}")
