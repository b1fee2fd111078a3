"""config.yaml → `Config`: read, `${VAR}` expanded from the environment, validated and
cross-checked. Every mistake becomes a `ConfigError` whose lines name the path
(`sources[2].every`) and never echo a value that may carry a secret."""
from __future__ import annotations

import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from basis.errors import UsageError
from crawler.config.model import Config
from crawler.config.validation import cross_check, describe, join_path

DEFAULT_PATH = Path("config.yaml")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(UsageError):
    """One or more mistakes in the configuration, each `(path, message)`."""

    def __init__(self, issues: list[tuple[str, str]], file: str = "config") -> None:
        self.issues = issues
        self.file = file  # "" when the mistake is not in a file (a name on the command line)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [": ".join(part for part in (self.file, path, msg) if part)
                for path, msg in self.issues]



def load_config(path: str | Path = DEFAULT_PATH, env: Mapping[str, str] | None = None) -> Config:
    """Read, expand `${VAR}`, validate and cross-check a config file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([("", f"cannot read {path}: {exc.strerror}")], str(path)) from None
    return parse_config(utf8(data, str(path)), env=os.environ if env is None else env,
                        file=str(path))


def utf8(data: bytes, file: str) -> str:
    """The file's text; one saved in another encoding (GBK, Big5, UTF-16) is an error that
    says where and what to do."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = f"0x{data[exc.start]:02x}"
        raise ConfigError([("", f"line {line}: not UTF-8 (byte {byte}: GBK? Big5?); save it "
                                "as UTF-8")], file) from None


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key written twice in one mapping: PyYAML would keep the
    last one and silently drop the first (a whole `sources:` block, a channel)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: later keys override merged ones on purpose
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, typing.Hashable):
                continue  # the base constructor refuses it
            if key in first:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line "
                                f"{first[key].start_mark.line + 1}); keep only one",
                    key_node.start_mark)
            first[key] = key_node
        return super().construct_mapping(node, deep)


def parse_config(text: str, env: Mapping[str, str], file: str = "config") -> Config:
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 — a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError([("", f"invalid YAML: {where}{exc.problem or exc.context}")],
                          file) from None
    except yaml.YAMLError as exc:
        raise ConfigError([("", f"invalid YAML: {exc}")], file) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([("", "the top level must be a mapping of keys")], file)
    issues: list[tuple[str, str]] = []
    from_env: set[str] = set()
    raw = _expand_env(raw, env, "", issues, from_env)
    if issues:
        raise ConfigError(issues, file)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([describe(err) for err in exc.errors()], file) from None
    issues = list(cross_check(config))
    if issues:
        raise ConfigError(issues, file)
    config._from_env = frozenset(from_env)
    return config


def _expand_env(node: Any, env: Mapping[str, str], path: str,
                issues: list[tuple[str, str]], used: set[str]) -> Any:
    """`node` with each `${VAR}` replaced by its value, which is added to `used`."""
    if isinstance(node, dict):
        return {k: _expand_env(v, env, join_path(path, k), issues, used) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, env, f"{path}[{i}]", issues, used) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            issues.append((path, f"environment variable {name} is not set "
                                 f"(export {name}=… before running)"))
            return ""
        used.add(env[name])
        return env[name]
    return _ENV_REF.sub(substitute, node)
