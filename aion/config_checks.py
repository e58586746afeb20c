"""``ConfigError`` and the checks every config section uses: value rules and the typed builder.

Each section of ``aion.yaml`` is a frozen dataclass next to its subsystem
(``aion/<subsystem>/config.py``); its ``__post_init__`` calls these checks, and
:func:`build_section` turns a YAML mapping into it, rejecting unknown keys and wrong types.
:mod:`aion.config` assembles the sections into ``AionConfig``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A bad configuration value; ``str()`` is one line naming the key and the fix."""


def check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise ConfigError naming ``key`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(allowed)}")


def check_positive(key: str, value: float) -> None:
    """Raise ConfigError naming ``key`` unless ``value > 0``."""
    if not value > 0:
        raise ConfigError(f"{key}: must be > 0, got {value!r}")


def check_at_least(key: str, value: int, low: int) -> None:
    """Raise ConfigError naming ``key`` unless ``value >= low``."""
    if value < low:
        raise ConfigError(f"{key}: must be >= {low}, got {value!r}")


def check_unit(key: str, value: float) -> None:
    """Raise ConfigError naming ``key`` unless ``0 <= value <= 1``."""
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key}: must be within [0, 1], got {value!r}")


def check_type(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a simple type hint; returns the value coerced (int -> float)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return check_type(key, value, a)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} has the wrong type (expected {hint})")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1]
        return tuple(check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return build_section(hint, value, key)
    return value


def build_section(cls: Any, data: Any, prefix: str) -> Any:
    """Build the dataclass ``cls`` from the YAML mapping ``data`` (None: all defaults).

    ``prefix`` is the dotted key of the section (``""`` for the top level), used in errors.

    Raises:
        ConfigError: ``data`` is not a mapping, a key is unknown (the message lists the
            known keys), a value has the wrong type, or ``cls`` rejects a value.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in known:
            where = f"{prefix}.{k}" if prefix else str(k)
            raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(known))})")
    kwargs = {}
    for k, v in data.items():
        kwargs[k] = check_type(f"{prefix}.{k}" if prefix else k, v, hints[k])
    return cls(**kwargs)
