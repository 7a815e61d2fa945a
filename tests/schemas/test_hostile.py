"""Untrusted bytes: every bad input is one DecodeError with a reason, in little work and memory.

"Little" is counted, not timed: the Python calls a decode makes (the guard's walk) and the bytes
it allocates (fastavro's reading) stay within a bound linear in the bytes actually given,
whatever counts and lengths those bytes claim.
"""

from __future__ import annotations

import datetime as dt
import sys
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from schemas import DecodeError, decode, encode, encode_version
from schemas.catalogue import catalogue
from schemas.guard import read_long

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _zigzag(n: int) -> bytes:
    """Avro long encoding, for crafting hostile counts and lengths."""
    value = (n << 1) ^ (n >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def dead_letter(**fields: Any) -> dict[str, Any]:
    return {
        "reason": "could not decode",
        "error_type": "decode:unknown_schema_id",
        "component": "streams.routing.router",
        "event_id": None,
        "source_topic": "inbound.dropout_notice",
        "source_partition": 3,
        "source_offset": 42,
        "original_key": b"k",
        "original_value": b"\x00\x00\x00\x00\x01",
        "original_headers": [],
        "failed_at": EPOCH,  # encodes as the single byte 0x00
        **fields,
    }


def routed_task(**fields: Any) -> dict[str, Any]:
    return {
        "task_id": "t-1",
        "event_id": "e-1",
        "event_type": "dk.ungebus.dropout_notice.v1",
        "unit": "youth_unit",
        "kommunekode": "161",
        "basis": {"kind": "statute", "id": "kui_12c", "citation": "KUI § 12 c"},
        "consent_id": None,
        "due_by": EPOCH,
        "priority": "high",
        "policy_version": "1",
        "subject_pseudonym": "ab" * 32,
        "details": {},
        "sealed_details": None,
        "routed_at": EPOCH,  # 0x00
        **fields,
    }


VALID = encode_version("dead_letter", 1, dead_letter())  # v1: the layout the cuts below know
VALID_TASK = encode("routed_task", routed_task())


# A decode's work: a base (the first decode of a schema builds its guard and parsed schema, about
# 300 calls and 15 KiB) plus a share per byte given. An honest record walks about 2 calls and
# allocates about 32 bytes per byte; a decode that believed a hostile count or length would make
# millions of calls or allocate gigabytes.
CALLS_BASE, CALLS_PER_BYTE = 1_000, 8
ALLOCATED_BASE, ALLOCATED_PER_BYTE = 128 * 1024, 128


@contextmanager
def bounded(data: bytes) -> Iterator[None]:
    """Fails when what runs inside makes more calls, or allocates more, than ``data`` warrants."""
    calls = 0

    def count(_frame: FrameType, event: str, _arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    tracing = tracemalloc.is_tracing()
    if tracing:
        tracemalloc.reset_peak()
    else:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sys.setprofile(count)
    try:
        yield
    finally:
        sys.setprofile(None)
        allocated = tracemalloc.get_traced_memory()[1] - before
        if not tracing:
            tracemalloc.stop()
    max_calls = CALLS_BASE + CALLS_PER_BYTE * len(data)
    max_allocated = ALLOCATED_BASE + ALLOCATED_PER_BYTE * len(data)
    assert calls <= max_calls, f"{len(data)} bytes took {calls:,} calls (bound {max_calls:,})"
    assert allocated <= max_allocated, (
        f"{len(data)} bytes allocated {allocated:,} bytes (bound {max_allocated:,})"
    )


def test_the_bound_catches_work_out_of_proportion_to_the_bytes() -> None:
    with pytest.raises(AssertionError, match="allocated"), bounded(b"\x00" * 10):
        bytearray(ALLOCATED_BASE * 2)
    with pytest.raises(AssertionError, match="calls"), bounded(b"\x00" * 10):
        for _ in range(CALLS_BASE * 2):
            len(b"")


def rejects(data: bytes, code: str, **limits: int) -> DecodeError:
    with bounded(data), pytest.raises(DecodeError) as caught:
        decode(data, **limits)
    assert caught.value.code == code, caught.value.reason
    assert isinstance(caught.value, ValueError)
    assert caught.value.reason and str(caught.value) == caught.value.reason
    return caught.value


def test_valid_fixtures_decode() -> None:
    assert decode(VALID).record == {
        **dead_letter(),
        "original_value_sha256": None,
        "original_value_size": None,
    }
    assert decode(VALID_TASK).record == routed_task()
    # ... details {} (0), sealed_details null (branch 0), routed_at 0
    assert VALID.endswith(b"\x00\x00") and VALID_TASK.endswith(b"\x00\x00\x00")


def test_unknown_schema_id() -> None:
    error = rejects(b"\x00\x00\x00\x00\x07" + VALID[5:], "unknown_schema_id")
    assert "7" in error.reason


def test_bad_magic_byte() -> None:
    rejects(b"\x01" + VALID[1:], "bad_magic_byte")


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x00\x0c"])
def test_shorter_than_the_header(data: bytes) -> None:
    rejects(data, "truncated")


def test_every_truncation_is_rejected() -> None:
    for cut in range(5, len(VALID)):
        with bounded(VALID[:cut]), pytest.raises(DecodeError):
            decode(VALID[:cut])


def test_trailing_garbage() -> None:
    error = rejects(VALID + b"\x00junk", "trailing_bytes")
    assert "5 bytes left" in error.reason


def test_oversized_default_limit_is_900_kibibytes() -> None:
    assert schemas.DEFAULT_MAX_SIZE == 900 * 1024  # a dead letter's copy fits in 1,000,000
    rejects(VALID + bytes(900 * 1024), "oversized")


def test_size_limit_can_be_lowered_and_raised() -> None:
    rejects(VALID, "oversized", max_size=10)
    big = encode_version(
        "dead_letter", 1, dead_letter(original_value=bytes(2 * 1024 * 1024)), max_size=2**22
    )
    assert len(decode(big, max_size=2**22).record["original_value"]) == 2 * 1024 * 1024
    rejects(big, "oversized")


def test_absurd_array_count_fails_fast() -> None:
    hostile = VALID[:-2] + _zigzag(2**62) + b"\x00"
    error = rejects(hostile, "too_many_items")
    assert "original_headers" not in error.reason or "array" in error.reason


def test_absurd_map_count_fails_fast() -> None:
    rejects(VALID_TASK[:-3] + _zigzag(2**40) + b"\x00\x00", "too_many_items")


def test_negative_block_count_with_absurd_size_fails_fast() -> None:
    rejects(VALID[:-2] + _zigzag(-5) + _zigzag(2**50) + b"\x00", "invalid_length")


def test_count_larger_than_the_bytes_left() -> None:
    rejects(VALID[:-2] + _zigzag(50) + b"\x00" * 10, "too_many_items")


def test_item_limit_bounds_honest_but_huge_collections() -> None:
    headers = [{"key": f"h{i}", "value": None} for i in range(20)]
    data = encode_version("dead_letter", 1, dead_letter(original_headers=headers))
    assert len(decode(data).record["original_headers"]) == 20
    rejects(data, "too_many_items", max_items=10)


def test_string_longer_than_the_bytes_left() -> None:
    # the first field (reason) claims 1 GB of text
    rejects(VALID[:5] + _zigzag(10**9) + VALID[6:], "truncated")


def test_negative_string_length() -> None:
    rejects(VALID[:5] + _zigzag(-3) + VALID[6:], "invalid_length")


def test_endless_varint() -> None:
    rejects(VALID[:5] + b"\xff" * 64, "invalid_number")


def test_invalid_utf8_is_a_decode_error() -> None:
    reason_len = VALID[5] >> 1  # zigzag of a small positive length
    broken = bytearray(VALID)
    broken[6 : 6 + reason_len] = b"\xff" * reason_len
    rejects(bytes(broken), "invalid_avro")


def test_read_long_matches_the_encoding() -> None:
    for n in (0, 1, -1, 63, -64, 2**31, -(2**63), 2**63 - 1):
        assert read_long(_zigzag(n), 0) == (n, len(_zigzag(n)))


# --- fuzz: random and mutated bytes never escape as anything but DecodeError -------------

IDS = [sv.schema_id for sv in catalogue().versions]
SAMPLES = [
    VALID,
    VALID_TASK,
    encode_version("dead_letter", 1, dead_letter(original_headers=[{"key": "a", "value": b"b"}])),
]


def _decode_or_reject(data: bytes) -> None:
    with bounded(data):
        try:
            decode(data)
        except DecodeError as exc:
            assert exc.reason


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _decode_or_reject(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(IDS), st.binary(max_size=300))
def test_fuzz_random_bodies_behind_valid_headers(schema_id: int, body: bytes) -> None:
    _decode_or_reject(b"\x00" + schema_id.to_bytes(4, "big") + body)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete"]),
            st.integers(0, 10**6),
            st.integers(0, 255),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_fuzz_mutated_valid_encodings(sample: bytes, edits: list[tuple[str, int, int]]) -> None:
    data = bytearray(sample)
    for op, where, byte in edits:
        i = where % (len(data) + 1)
        if op == "insert":
            data.insert(i, byte)
        elif data and op == "flip":
            data[i % len(data)] ^= byte or 1
        elif data:
            del data[i % len(data)]
    _decode_or_reject(bytes(data))
