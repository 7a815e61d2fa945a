"""A dead letter's value: the rejected record's reason, position and original bytes, bounded.

A dead letter must itself fit where it goes: ``max_size`` is what the producer leaves for its
value. A record too large to copy beside its reason (key, value and headers together) is
kept by reference instead: the SHA-256 and size of its value and its position
(topic/partition/offset, readable there for the topic's retention), with the reason saying
so, so the rejection is never lost to a second failure. Free text and labels that may come
from the record (a reason quoting an exception, an event id from a header) are clipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from schemas.codec import EncodeError, encode

MAX_REASON = 2000  # characters of the reason, before the note on a record kept by reference
MAX_LABEL = 256  # characters of the error type, component and event id
# How often an operator re-published a dead letter's record (``ungebus deadletters retry``):
# on the re-published record, and carried onto the dead letter of a record that fails again.
RETRY_COUNT_HEADER = "ungebus-retry-count"


def retry_count(headers: Iterable[tuple[str, str | bytes | None]]) -> int:
    """How often the record these headers belong to was retried (0: never, or a header that
    is not a small number)."""
    for name, value in headers:
        if name == RETRY_COUNT_HEADER and value is not None:
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
            return int(text) if text.isdigit() and len(text) <= 6 else 0
    return 0


def carried_headers(original: Iterable[tuple[str, str | bytes | None]]) -> list[tuple[str, bytes]]:
    """What a dead letter carries of its original's headers on its own: the retry count, so
    that a letter kept by reference (without the original's headers) still tells it."""
    count = retry_count(original)
    return [(RETRY_COUNT_HEADER, str(count).encode())] if count else []


def encode_dead_letter(record: Mapping[str, Any], *, max_size: int) -> bytes:
    """``dead_letter`` as Avro, at most ``max_size`` bytes: with the original's bytes when
    they fit, else by reference."""
    value: bytes | None = record.get("original_value")
    letter = {
        **record,
        "reason": clip(record["reason"], MAX_REASON),
        "error_type": clip(record["error_type"], MAX_LABEL),
        "component": clip(record["component"], MAX_LABEL),
        "event_id": None if record.get("event_id") is None else clip(record["event_id"], MAX_LABEL),
        "original_value_sha256": None if value is None else hashlib.sha256(value).hexdigest(),
        "original_value_size": None if value is None else len(value),
    }
    if copied_size(record) < max_size:  # else it cannot fit: do not encode it to find out
        try:
            return encode("dead_letter", letter, max_size=max_size)
        except EncodeError:  # too large after all, or a header name Avro cannot hold
            pass
    return encode("dead_letter", by_reference(letter), max_size=max_size)


def by_reference(letter: Mapping[str, Any]) -> dict[str, Any]:
    """The letter without the original's key, value and headers, the reason saying where
    the original stays and how to recognise it."""
    key = letter.get("original_key") or b""
    headers = letter.get("original_headers") or []
    header_bytes = sum(_utf8_size(h["key"]) + len(h["value"] or b"") for h in headers)
    position = f"{letter['source_topic']}/{letter['source_partition']}/{letter['source_offset']}"
    if letter["original_value_sha256"] is None:
        value = "no value"
    else:
        value = (
            f"value {letter['original_value_size']:,} bytes, SHA-256 "
            f"{letter['original_value_sha256']}"
        )
    note = (
        f" (the original is too large to copy into a dead letter: {value}; key {len(key):,} "
        f"bytes; {len(headers)} headers, {header_bytes:,} bytes; it stays at {position} for "
        "the topic's retention)"
    )
    return {
        **letter,
        **{name: _text(letter[name]) for name in ("error_type", "component", "source_topic")},
        "event_id": None if letter["event_id"] is None else _text(letter["event_id"]),
        "reason": _text(letter["reason"] + note),
        "original_key": None,
        "original_value": None,
        "original_headers": [],
    }


def copied_size(record: Mapping[str, Any]) -> int:
    """Bytes of the original that a dead letter copies: key, value, header names and values."""
    headers = record.get("original_headers") or []
    return (
        len(record.get("original_key") or b"")
        + len(record.get("original_value") or b"")
        + sum(_utf8_size(h["key"]) + len(h["value"] or b"") for h in headers)
    )


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "replace"))


def _text(text: str) -> str:
    """``text`` as Avro can hold it (a lone surrogate, from bytes decoded leniently, cannot)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
