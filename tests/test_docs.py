"""The README is part of the contract: every command it shows exists with the options it
uses, and every config key is documented."""
from __future__ import annotations

import re
import shlex
import typing
from collections.abc import Mapping
from pathlib import Path

import click
import pytest
from pydantic import BaseModel

from alerts.channels.settings import CHANNEL_TYPES
from crawler.cli import cli
from crawler.config import Config

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
EXAMPLES = sorted(set(re.findall(r"`(mediawatch [^`\[]+)`", README)))


def resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    """Walk the click groups along `args`; return the command and the words left over."""
    command: click.Command = cli
    ctx = click.Context(cli)
    while isinstance(command, click.Group) and args:
        if args[0].startswith("-"):
            option = args.pop(0)
            takes_value = any(option in p.opts and not p.is_flag for p in command.params
                              if isinstance(p, click.Option))
            if takes_value:
                args.pop(0)
            continue
        sub = command.get_command(ctx, args[0])
        assert sub is not None, f"README shows an unknown command: {args[0]!r}"
        command, args = sub, args[1:]
    return command, args


@pytest.mark.parametrize("example", EXAMPLES)
def test_readme_command_exists(example: str) -> None:
    args = shlex.split(example.split(" (", 1)[0])[1:]
    command, rest = resolve(args)
    assert not isinstance(command, click.Group), f"{example!r} names a group, not a command"
    options = {o for p in command.params if isinstance(p, click.Option) for o in p.opts}
    for word in rest:
        if word.startswith("--"):
            assert word in options, f"{example!r}: {command.name} has no option {word}"


def test_every_command_is_documented() -> None:
    def leaves(group: click.Group, prefix: str) -> list[str]:
        out = []
        for name, sub in group.commands.items():
            path = f"{prefix} {name}".strip()
            out += leaves(sub, path) if isinstance(sub, click.Group) else [path]
        return out
    for path in leaves(cli, ""):
        assert f"`{path}" in README, f"command {path!r} is missing from the README"


def config_keys(model: type[BaseModel], prefix: str) -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        nested = field.annotation
        if typing.get_origin(nested) is Mapping:
            keys.append(f"{key}.NAME")
            continue
        args = [a for a in typing.get_args(nested) if a is not type(None)]
        inner = args[0] if args and isinstance(args[0], type) else nested
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            suffix = "[]." if typing.get_origin(nested) is tuple else "."
            keys += config_keys(inner, key + suffix)
        else:
            keys.append(key)
    return keys


def test_every_config_key_is_documented() -> None:
    for key in config_keys(Config, ""):
        assert f"`{key}`" in README, f"config key {key!r} is missing from the README"
    for kind in CHANNEL_TYPES:
        assert f"type: {kind}" in README
