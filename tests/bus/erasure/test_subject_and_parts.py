"""Whom ``ungebus erase`` is about, and which parts of a record are sealed personal data."""

from __future__ import annotations

import datetime as dt

import pytest

import schemas
from bus.crypto import MemoryKeyring, seal
from bus.erasure.readable import sealed_parts
from bus.erasure.subject import SubjectError, subject_pseudonym
from schemas.cpr import pseudonym

KEY = b"k" * 32


def test_a_cpr_number_becomes_its_pseudonym_and_a_pseudonym_stays() -> None:
    expected = pseudonym("0101041234", KEY)
    assert subject_pseudonym("010104-1234", KEY) == expected
    assert subject_pseudonym(" 0101041234\n", KEY) == expected  # as read from stdin
    assert subject_pseudonym(expected, KEY) == expected


@pytest.mark.parametrize("given", ["", "Freja", "01010412", "0101041234x", "A" * 64])
def test_anything_else_is_refused_without_repeating_it(given: str) -> None:
    with pytest.raises(SubjectError) as refused:
        subject_pseudonym(given, KEY)
    assert given.strip() not in str(refused.value) or not given.strip()


def test_a_sealed_value_and_a_dead_letters_sealed_original_are_found() -> None:
    keyring = MemoryKeyring()
    sealed = seal(keyring, "a" * 64, b"personal")
    letter = schemas.encode(
        "dead_letter",
        {
            "reason": "a test", "error_type": "Test", "component": "router", "event_id": None,
            "source_topic": "inbound.events", "source_partition": 0, "source_offset": 1,
            "original_key": b"a" * 64, "original_value": sealed, "original_headers": [],
            "failed_at": dt.datetime.now(dt.UTC), "original_value_sha256": None,
            "original_value_size": None,
        },
    )  # fmt: skip

    assert sealed_parts(sealed) == [sealed]
    assert sealed_parts(letter) == [sealed]
    assert sealed_parts(b"\x00\x00\x00\x00\x01garbage") == []
    assert sealed_parts(None) == []
