"""The Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary.

Standard tooling (and a Schema Registry loaded from ``ungebus schemas export``) can read what we
write. Decoding treats bytes as hostile: size, magic byte, schema id, every count and length and
trailing bytes are checked before fastavro runs, and every failure is one ``DecodeError``.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from functools import cache
from typing import Any, NamedTuple

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from schemas.catalogue import SchemaVersion, catalogue
from schemas.guard import GuardError, Step, compile_guard

MAGIC = 0
HEADER = struct.Struct(">bI")
# Far above any real event (the HTTP edge takes 64 KiB), and small enough that a dead letter
# copying a record of this size fits under librdkafka's 1,000,000-byte message.max.bytes
# (``bus.limits``; UNGEBUS_MAX_RECORD_BYTES sets a component's own limit).
DEFAULT_MAX_SIZE = 900 * 1024
DEFAULT_MAX_ITEMS = 10_000  # per array or map; a routed task's details map is ~30


class DecodeError(ValueError):
    """Bytes that are not a valid record of a catalogued schema; ``code`` for metrics."""

    def __init__(self, code: str, reason: str, schema_id: int | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.schema_id = schema_id


class EncodeError(ValueError):
    """A record that does not fit its schema (wrong type, unknown enum symbol, ...)."""


class RecordTooLarge(EncodeError):
    """A record whose encoding is over the size limit."""


class Decoded(NamedTuple):
    name: str
    version: int
    record: dict[str, Any]


@cache
def _parsed(sv: SchemaVersion) -> Any:
    return parse_schema(dict(sv.schema))


@cache
def _guard(sv: SchemaVersion, max_items: int) -> Step:
    return compile_guard(sv.schema, max_items)


def parsed_schema(name: str, version: int | None = None) -> Any:
    """The fastavro-parsed schema (newest version unless given), cached."""
    return _parsed(catalogue().get(name, version))


def encode(name: str, record: Mapping[str, Any], *, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """Wire bytes for ``record`` in the newest version of ``name``."""
    return _encode(catalogue().get(name), record, max_size)


def encode_version(
    name: str, version: int, record: Mapping[str, Any], *, max_size: int = DEFAULT_MAX_SIZE
) -> bytes:
    """Wire bytes in an older version: for evolution tests and replay fixtures, not producers."""
    return _encode(catalogue().get(name, version), record, max_size)


def _encode(sv: SchemaVersion, record: Mapping[str, Any], max_size: int) -> bytes:
    out = io.BytesIO()
    out.write(HEADER.pack(MAGIC, sv.schema_id))
    try:
        schemaless_writer(out, _parsed(sv), record, strict=True, strict_allow_default=True)
    except Exception as exc:  # fastavro raises ValueError, TypeError, KeyError, ...
        raise EncodeError(f"{sv.name} v{sv.version}: {type(exc).__name__}: {exc}") from exc
    data = out.getvalue()
    if len(data) > max_size:
        raise RecordTooLarge(
            f"{sv.name}: encoded record is {len(data):,} bytes, over the limit of {max_size:,}"
        )
    return data


def schema_id_of(data: bytes) -> int:
    """The schema id in a wire header, without decoding the rest."""
    _check_header(data, DEFAULT_MAX_SIZE)
    return int.from_bytes(data[1:5], "big")


def _check_header(data: bytes, max_size: int) -> None:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("not_bytes", f"expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise DecodeError("oversized", f"payload is {len(data)} bytes, over the {max_size} limit")
    if len(data) < HEADER.size:
        raise DecodeError("truncated", f"payload is {len(data)} bytes, shorter than the header")
    if data[0] != MAGIC:
        raise DecodeError("bad_magic_byte", f"magic byte is {data[0]}, expected {MAGIC}")


def decode(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_items: int = DEFAULT_MAX_ITEMS,
    version: int | None = None,
) -> Decoded:
    """(name, version written, record read into the newest version) from untrusted bytes.

    ``version`` reads the record into that version of its schema instead, as a consumer that
    knows only that version would (evolution tests, and comparing with what older code wrote).
    """
    _check_header(data, max_size)
    buf = bytes(data)
    schema_id = int.from_bytes(buf[1:5], "big")
    writer = catalogue().by_id.get(schema_id)
    if writer is None:
        raise DecodeError("unknown_schema_id", f"schema id {schema_id} is not in the catalogue")
    try:
        end = _guard(writer, max_items)(buf, HEADER.size)
    except GuardError as exc:
        raise DecodeError(
            exc.code, f"{writer.name} v{writer.version}: {exc.reason}", schema_id
        ) from exc
    except RecursionError as exc:
        raise DecodeError("too_deep", f"{writer.name}: nesting too deep", schema_id) from exc
    if end != len(buf):
        raise DecodeError(
            "trailing_bytes",
            f"{writer.name} v{writer.version}: {len(buf) - end} bytes left after the record",
            schema_id,
        )
    cat = catalogue()
    reader = cat.newest[writer.name] if version is None else cat.get(writer.name, version)
    try:
        record = schemaless_reader(
            io.BytesIO(buf[HEADER.size :]),
            _parsed(writer),
            None if reader is writer else _parsed(reader),
        )
    except Exception as exc:  # bad UTF-8, dates out of range, ...: all the same to a caller
        raise DecodeError(
            "invalid_avro",
            f"{writer.name} v{writer.version}: {type(exc).__name__}: {str(exc)[:200]}",
            schema_id,
        ) from exc
    if not isinstance(record, dict):
        raise DecodeError("invalid_avro", f"{writer.name}: not a record", schema_id)
    return Decoded(writer.name, writer.version, record)
