"""The bridge from config.yaml to the alert machinery: policies, controls, channels."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from alerts.channels.base import Channel, UnbuiltChannel
from alerts.dispatcher import Controls, Dispatcher
from alerts.outbox import AlertPolicy
from basis.secrets import hushed
from crawler.config import Config, EmailChannel, SlackChannel

log = logging.getLogger(__name__)


def alert_policies(config: Config) -> dict[str, AlertPolicy]:
    return {t.name: AlertPolicy(t.channels, t.mode, t.update_window) for t in config.topics}


def alert_controls(config: Config) -> dict[str, Controls]:
    return {t.name: Controls(t.min_sources, t.quiet_hours.until if t.quiet_hours
                             else Controls().quiet_until)
            for t in config.topics}


def build_channels(config: Config) -> dict[str, Channel]:
    """Every channel; the first that cannot be built raises ValueError (naming no secret)."""
    from alerts.channels import build_channel

    return {name: build_channel(name, channel) for name, channel in config.channels.items()}


def open_channels(config: Config) -> dict[str, Channel]:
    """Every channel, each built on its own: one that cannot be built is logged (by name,
    without secrets) and stands in as an `UnbuiltChannel` whose alerts wait; the others
    deliver as usual."""
    from alerts.channels import build_channel

    channels: dict[str, Channel] = {}
    for name, settings in config.channels.items():
        try:
            with hushed("apprise"):  # Apprise logs a URL it cannot load, secrets and all
                channels[name] = build_channel(name, settings)
        except Exception as exc:  # noqa: BLE001 — one bad channel must not stop the others
            reason = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
            log.error("channel %s cannot be built, its alerts wait: %s", name, reason)
            channels[name] = UnbuiltChannel(name, reason)
    return channels


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


def dispatcher(config: Config, db: sessionmaker[Session],
               channels: Mapping[str, Channel] | None = None) -> Dispatcher:
    return Dispatcher(db, open_channels(config) if channels is None else channels,
                      alert_controls(config))
