"""Dotted field paths of a contract and the ``details`` map a routed task carries.

The routing policy names, per unit, the fields it may see as dotted paths
(``envelope.subject.birth_date``, ``sensitive``); it validates them against ``field_paths`` and
builds a task's ``details`` with ``details_from``. Records nest; arrays and maps are leaves.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from typing import Any

from schemas.catalogue import catalogue, named_types


def field_paths(name: str) -> set[str]:
    """Every dotted field path of the newest version of ``name``, records and their fields."""
    return set(_field_paths(name))


@cache
def _field_paths(name: str) -> frozenset[str]:
    schema = catalogue().get(name).schema
    paths: set[str] = set()
    _walk(schema, "", named_types(schema), paths)
    return frozenset(paths)


def _record_of(node: Any, named: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The record behind a field type, looking through names and nullable unions."""
    if isinstance(node, str):
        node = named.get(node)
    if isinstance(node, list):
        branches = [b for b in node if b != "null"]
        return _record_of(branches[0], named) if len(branches) == 1 else None
    if isinstance(node, dict):
        if node.get("type") in ("record", "error"):
            return node
        if isinstance(node.get("type"), dict | list):
            return _record_of(node["type"], named)
    return None


def _walk(record: Mapping[str, Any], prefix: str, named: Mapping[str, Any], out: set[str]) -> None:
    for f in record["fields"]:
        path = f"{prefix}{f['name']}"
        out.add(path)
        inner = _record_of(f["type"], named)
        if inner is not None:
            _walk(inner, f"{path}.", named, out)


def value_at(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path; None when a nullable record on the way is null."""
    value: Any = record
    for part in _parts(path):
        if value is None:
            return None
        value = value[part]
    return value


@lru_cache(maxsize=4096)  # paths come from the policy and the schemas: a few hundred
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def details_from(name: str, record: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, str]:
    """Allowed path -> JSON-encoded value: the only part of an event a routed task carries."""
    known = _field_paths(name)
    unknown = sorted(set(allowed) - known)
    if unknown:
        raise KeyError(f"{name} has no field {', '.join(unknown)}")
    return {path: to_json(value_at(record, path)) for path in sorted(set(allowed))}


def to_json(value: Any) -> str:
    """JSON for a decoded Avro value: dates ISO 8601, timestamps UTC with Z, bytes base64."""
    text = _scalar_json(value)
    return _ENCODER.encode(value) if text is None else text


def _scalar_json(value: Any) -> str | None:
    """What _ENCODER writes for a string, null, boolean, integer, finite float, date, timestamp
    or bytes; None for anything else (left to _ENCODER). The router writes a JSON value for
    every field of every task, and these are most of them: this skips the encoder's generic
    machinery (records, maps and arrays it writes faster itself)."""
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if kind in _AS_STRING:
        return _json_string(_json_default(value))
    return None


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot JSON-encode {type(value).__name__}")


# One encoder for every call: json.dumps with options builds a new one each time (the router
# calls this for every field of every task).
_ENCODER = json.JSONEncoder(default=_json_default, ensure_ascii=False, sort_keys=True)
_json_string = json.encoder.encode_basestring  # what _ENCODER writes a str as (not ASCII-only)
_AS_STRING = (dt.datetime, dt.date, bytes)  # written as the JSON string of _json_default
