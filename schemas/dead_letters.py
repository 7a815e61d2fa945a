"""A dead letter's value: the rejected record's reason, position and original bytes.

A record close to the size limit does not fit into a dead letter beside its reason and
headers; the letter then says where the original stays (topic/partition/offset, readable
there for the topic's retention) instead of copying it, so the rejection is never lost to
a second failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.codec import EncodeError, encode


def encode_dead_letter(record: Mapping[str, Any]) -> bytes:
    """``dead_letter`` as Avro; without the original's bytes when they make it too large."""
    try:
        return encode("dead_letter", record)
    except EncodeError:
        position = (
            f"{record['source_topic']}/{record['source_partition']}/{record['source_offset']}"
        )
        size = len(record.get("original_value") or b"")
        reason = (
            f"{record['reason']} (the original, {size} bytes, is too large to copy into a "
            f"dead letter: it stays at {position})"
        )
        pointer = {**record, "reason": reason, "original_value": None, "original_headers": []}
        return encode("dead_letter", pointer)
