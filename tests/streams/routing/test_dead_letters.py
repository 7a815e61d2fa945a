"""A dead letter always fits where it goes: it copies the record, or keeps it by reference."""

from __future__ import annotations

import datetime as dt
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from bus.limits import RecordLimits
from streams.routing.dead_letters import DeadLetters
from streams.routing.outputs import InMessage

LIMITS = RecordLimits()
NOW = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
LETTERS = DeadLetters("t.deadletter", LIMITS, clock=lambda: NOW)
SIZES = st.sampled_from([0, 1, 64, 1000, 100_000, 500_000, 921_000, 990_000, 1_040_000])


def _read(value: bytes | None) -> dict[str, object]:
    assert value is not None
    return schemas.decode(value, max_size=LIMITS.producer_max_bytes).record


@settings(max_examples=40, deadline=None)
@given(
    key_size=SIZES,
    value_size=SIZES,
    header_size=SIZES,
    header_count=st.integers(0, 30),
    reason_size=st.sampled_from([10, 5000, 200_000]),
)
def test_a_dead_letter_fits_the_producer_whatever_the_record(
    key_size: int, value_size: int, header_size: int, header_count: int, reason_size: int
) -> None:
    value = b"\x00" + bytes(range(256)) * (value_size // 256) if value_size else None
    headers = [(f"h{i}", b"v" * (header_size // max(header_count, 1))) for i in range(header_count)]
    key = b"k" * key_size or None
    message = InMessage("t.inbound.dropout_notice", 2, 41, key, value, headers)

    letter = LETTERS.of_record(message, "r" * reason_size, "DecodeError")

    assert LIMITS.too_large(letter.topic, letter.key, letter.value, letter.headers) is None
    record = _read(letter.value)
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == (
        "t.inbound.dropout_notice", 2, 41,
    )  # fmt: skip
    assert len(str(record["reason"])) < 3000
    if value is not None:
        assert record["original_value_sha256"] == hashlib.sha256(value).hexdigest()
        assert record["original_value_size"] == len(value)
    copied = key_size + len(value or b"") + header_size < LIMITS.max_record_bytes
    if copied:
        assert record["original_value"] == value
        assert record["original_key"] == key
    if record["original_value"] is None and value is not None:
        assert "too large to copy" in str(record["reason"])
        assert "it stays at t.inbound.dropout_notice/2/41" in str(record["reason"])


def test_labels_taken_from_the_record_are_clipped() -> None:
    huge_id = "e" * 500_000
    message = InMessage("t.in", 0, 1, b"k", b"v", [("ce_id", huge_id.encode())])

    record = _read(LETTERS.of_record(message, "bad", "x" * 10_000).value)

    assert len(str(record["event_id"])) == 256 and len(str(record["error_type"])) == 256


def test_a_header_name_avro_cannot_hold_gives_a_letter_by_reference() -> None:
    message = InMessage("t.in", 0, 1, b"k", b"v", [("bad-\udcff", b"x")])

    record = _read(LETTERS.of_record(message, "bad \udcff", "DecodeError").value)

    assert record["original_value"] is None and record["original_headers"] == []
    assert record["original_value_sha256"] == hashlib.sha256(b"v").hexdigest()
    assert "1 headers" in str(record["reason"])
