"""Build config dataclasses from TOML tables, driven by their annotations.

Usage::

    server = build(Server, {"public_url": "http://127.0.0.1:8080", ...}, "server")

A field's annotation is the expected type, a missing default means "required";
an unknown key, a missing one or a wrong type raises ConfigError with the
dotted key (`gifts[2].price`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A config key is missing, unknown or wrong; `key` is its dotted path."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def build(cls, table, where: str, skip=frozenset()):
    if not isinstance(table, dict):
        raise ConfigError(where or "(top)", "must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    for key in table:
        if key not in fields:
            raise ConfigError(_join(where, key), f"unknown key (allowed: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        key = _join(where, name)
        if name in table:
            values[name] = _convert(hints[name], table[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(key, "is required")
    return cls(**values)


def _convert(hint, value, key):
    origin = typing.get_origin(hint)
    if origin is dict:
        key_type, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(key, "must be a table")
        return {
            _convert(key_type, k, f"{key}.{k}"): _convert(value_type, v, f"{key}.{k}")
            for k, v in value.items()
        }
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(key, "must be an array")
        return [_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        return _convert(next(a for a in typing.get_args(hint) if a is not type(None)), value, key)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"must be a number, not {value!r}")
        return float(value)
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(key, f"must be an integer, not {value!r}")
    if hint is str and not isinstance(value, str):
        raise ConfigError(key, f"must be a string, not {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, not {value!r}")
    return value


def _join(where, key):
    return f"{where}.{key}" if where else key


def positive(key, value):
    if value <= 0:
        raise ConfigError(key, f"must be greater than 0, not {value}")


def check_url(key, value, schemes=("http", "https")):
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(key, f"must be an absolute {'/'.join(schemes)} URL, not {value!r}")
