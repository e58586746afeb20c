"""Canonical field names and their legacy aliases (``config/fields.yaml``).

Kite's own field names (``last_traded_quantity``, ``average_traded_price``,
``volume_traded``, ``total_buy_quantity``, ``total_sell_quantity``,
``exchange_timestamp``) are canonical inside aion. Older kiteconnect releases and
the kiteconnect-mocks fixtures use aliases (``last_quantity``, ``average_price``,
``volume``, ``buy_quantity``, ``sell_quantity``, ``timestamp``); they are renamed
here, at the input edge, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DEFAULT_FIELDS_PATH = Path(__file__).resolve().parents[2] / "config" / "fields.yaml"


@lru_cache(maxsize=8)
def _load(path: str) -> dict[str, dict[str, tuple[str, ...]]]:
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping of sections")
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    seen: dict[str, str] = {}
    for section, fields in doc.items():
        if not isinstance(fields, dict):
            raise ValueError(f"{path}: {section}: expected a mapping canonical -> [aliases]")
        sec: dict[str, tuple[str, ...]] = {}
        for canonical, aliases in fields.items():
            if aliases is None:
                aliases = []
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise ValueError(f"{path}: {section}.{canonical}: expected a list of alias names")
            for alias in aliases:
                key = f"{section}.{alias}"
                if key in seen or alias in fields:
                    raise ValueError(f"{path}: {section}.{alias}: alias is ambiguous")
                seen[key] = canonical
            sec[str(canonical)] = tuple(aliases)
        out[str(section)] = sec
    return out


def load_field_aliases(
    section: str = "tick", path: str | Path | None = None
) -> dict[str, tuple[str, ...]]:
    """Canonical name -> tuple of legacy aliases for one section of ``config/fields.yaml``.

    Raises FileNotFoundError when the file is missing, ValueError (naming the
    bad key) when it is malformed or the section does not exist.
    """
    sections = _load(str(path or DEFAULT_FIELDS_PATH))
    if section not in sections:
        raise ValueError(f"fields.yaml: no section {section!r}")
    return dict(sections[section])


def normalise_fields(
    record: Mapping[str, Any], section: str = "tick", path: str | Path | None = None
) -> dict[str, Any]:
    """Return a copy of ``record`` with legacy alias keys renamed to canonical names.

    Top-level keys only (nested ``ohlc``/``depth`` keys have no aliases). Raises
    ValueError when a record carries both a canonical name and one of its
    aliases with different values.
    """
    aliases = load_field_aliases(section, path)
    rename = {alias: canonical for canonical, names in aliases.items() for alias in names}
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = rename.get(key, key)
        if name in out and out[name] != value:
            raise ValueError(f"field {name!r} given twice (as {key!r}) with different values")
        out[name] = value
    return out
