"""Each channel's entry in config.yaml (`channels.NAME`), checked when the config loads as the
channel will use it: the endpoint's scheme and host, email addresses, an SMTP URL its
parser takes, an Apprise URL Apprise can load. Each check raises `ValueError` saying what
to write instead; no message repeats the value, which may carry a secret."""
from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Annotated, Literal, Union
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from alerts.channels.email import parse_smtp_url
from basis.secrets import hushed, url_secrets
from basis.urls import WEB_SCHEMES, check_url

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,19}")


def _endpoint(*schemes: str) -> AfterValidator:
    def check(secret: SecretStr) -> SecretStr:
        check_url(secret.get_secret_value(), schemes,
                  f"URL scheme must be one of {', '.join(schemes)}")
        return secret
    return AfterValidator(check)


def _smtp_url(secret: SecretStr) -> SecretStr:
    """A URL the email channel takes: its own parser decides (port, parameters)."""
    try:
        parse_smtp_url(secret.get_secret_value())
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("email channel: ")) from None
    return secret


def _email_address(value: str) -> str:
    if "@" not in parseaddr(value)[1] or any(c in value for c in "\r\n"):
        raise ValueError("not an email address (write desk@example.org or "
                         "'Desk <desk@example.org>')")
    return value.strip()


def _apprise_url(secret: SecretStr) -> SecretStr:
    """A URL that Apprise can load (parsed, nothing sent). Apprise's own complaint repeats
    the URL, so it is neither logged nor passed on."""
    import apprise  # here: 0.15 s, paid only by a config with an Apprise channel

    url = secret.get_secret_value()
    with hushed("apprise"):
        loaded = apprise.Apprise().add(url)
    if loaded:
        return secret
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not _SCHEME.fullmatch(scheme):
        raise ValueError("not an Apprise URL: write service://… (e.g. tgram://bottoken/chatid)")
    if scheme not in apprise.NotificationManager():
        raise ValueError(f"Apprise has no service {scheme}:// "
                         "(see https://github.com/caronc/apprise/wiki)")
    raise ValueError(f"Apprise cannot read this {scheme}:// URL: a token, user or host is "
                     f"missing or malformed (see the Apprise wiki page for {scheme}://)")


EmailAddress = Annotated[str, AfterValidator(_email_address)]


class ChannelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def endpoint(self) -> SecretStr | None:
        """The URL that carries the channel's secrets, if it has one."""
        return None

    def secrets(self) -> set[str]:
        """What of the endpoint must never be shown (see basis.secrets)."""
        endpoint = self.endpoint()
        return url_secrets(endpoint.get_secret_value()) if endpoint else set()

    def warnings(self) -> list[str]:
        """Legal but worth a second look: `key: what to consider`."""
        return []


class EmailSettings(ChannelSettings):
    type: Literal["email"]
    url: Annotated[SecretStr, _endpoint("smtp", "smtps"), AfterValidator(_smtp_url)]
    sender: EmailAddress = Field(alias="from")
    to: Annotated[tuple[EmailAddress, ...], Field(min_length=1)]

    def endpoint(self) -> SecretStr:
        return self.url

    def warnings(self) -> list[str]:
        url = urlsplit(self.url.get_secret_value())
        if url.scheme == "smtp" and url.password and "starttls=1" not in url.query:
            return ["url: the SMTP password would travel in clear; add ?starttls=1 or use "
                    "smtps://"]
        return []


class SlackSettings(ChannelSettings):
    type: Literal["slack"]
    webhook: Annotated[SecretStr, _endpoint(*WEB_SCHEMES)]

    def endpoint(self) -> SecretStr:
        return self.webhook

    def warnings(self) -> list[str]:
        host = urlsplit(self.webhook.get_secret_value()).hostname or ""
        if host != "hooks.slack.com":
            return [f"webhook: host {host!r} is not hooks.slack.com (fine for a self-hosted "
                    "endpoint)"]
        return []


class AppriseSettings(ChannelSettings):
    type: Literal["apprise"]
    url: Annotated[SecretStr, AfterValidator(_apprise_url)]

    def endpoint(self) -> SecretStr:
        return self.url


class JsonlSettings(ChannelSettings):
    type: Literal["jsonl"]
    path: str


class ConsoleSettings(ChannelSettings):
    type: Literal["console"]


AnyChannelSettings = Annotated[
    Union[EmailSettings, SlackSettings, AppriseSettings, JsonlSettings, ConsoleSettings],
    Field(discriminator="type"),
]
CHANNEL_TYPES = ("email", "slack", "apprise", "jsonl", "console")
