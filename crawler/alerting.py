"""The bridge from config.yaml to the alert machinery: policies, controls, channels."""
from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from alerts.channels.base import Channel
from alerts.dispatcher import Controls, Dispatcher
from alerts.outbox import AlertPolicy
from crawler.config import Config, EmailChannel, SlackChannel


def alert_policies(config: Config) -> dict[str, AlertPolicy]:
    return {t.name: AlertPolicy(t.channels, t.mode, t.update_window) for t in config.topics}


def alert_controls(config: Config) -> dict[str, Controls]:
    return {t.name: Controls(t.min_sources, t.quiet_hours.until if t.quiet_hours
                             else Controls().quiet_until)
            for t in config.topics}


def build_channels(config: Config) -> dict[str, Channel]:
    from alerts.channels import build_channel

    return {name: build_channel(name, channel) for name, channel in config.channels.items()}


def channel_warnings(config: Config) -> list[str]:
    """Legal but worth a second look: an unusual Slack host, a password sent in clear."""
    warnings = []
    for name, channel in config.channels.items():
        if isinstance(channel, SlackChannel):
            host = urlsplit(channel.webhook.get_secret_value()).hostname or ""
            if host != "hooks.slack.com":
                warnings.append(f"channels.{name}.webhook: host {host!r} is not "
                                "hooks.slack.com (fine for a self-hosted endpoint)")
        if isinstance(channel, EmailChannel):
            url = urlsplit(channel.url.get_secret_value())
            if url.scheme == "smtp" and url.password and "starttls=1" not in url.query:
                warnings.append(f"channels.{name}.url: the SMTP password would travel in "
                                "clear; add ?starttls=1 or use smtps://")
    return warnings


def dispatcher(config: Config, db: sessionmaker[Session]) -> Dispatcher:
    return Dispatcher(db, build_channels(config), alert_controls(config))
