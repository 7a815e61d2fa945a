"""Sealing per person (``bus.crypto``): what one key seals, only that key opens; a person whose
keys are gone reads as erased; the bytes say whose they are, and nothing more."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bus.crypto import (
    DataKey,
    Erased,
    MemoryKeyring,
    SealError,
    is_sealed,
    seal,
    sealed_header,
    unseal,
    unseal_value,
    unwrap_key,
    wrap_key,
)

ANNA = "a" * 64
BO = "b" * 64
CPR = b"0101041234"


@given(st.binary(max_size=2048))
def test_what_is_sealed_unseals_to_the_same_bytes(plaintext: bytes) -> None:
    keyring = MemoryKeyring()
    assert unseal(keyring, seal(keyring, ANNA, plaintext)) == plaintext


def test_a_sealed_value_holds_no_plaintext_and_names_its_person() -> None:
    keyring = MemoryKeyring()
    sealed = seal(keyring, ANNA, b"cpr=" + CPR + b" name=Test Testesen")

    assert CPR not in sealed and b"Testesen" not in sealed
    assert is_sealed(sealed) and not is_sealed(b"\x00\x00\x00\x00\x01rest")
    header = sealed_header(sealed)
    assert header.pseudonym == ANNA
    assert header.key_id == keyring.sealing_key(ANNA).key_id


def test_one_person_erased_leaves_the_other_readable() -> None:
    keyring = MemoryKeyring()
    anna, bo = seal(keyring, ANNA, b"anna"), seal(keyring, BO, b"bo")

    assert keyring.erase(ANNA) == 1

    with pytest.raises(Erased) as erased:
        unseal(keyring, anna)
    assert erased.value.pseudonym == ANNA
    assert unseal(keyring, bo) == b"bo"


def test_a_value_moved_to_another_person_or_tampered_with_does_not_open() -> None:
    keyring = MemoryKeyring()
    sealed = bytearray(seal(keyring, ANNA, b"anna"))
    keyring.sealing_key(BO)
    moved = bytearray(sealed)
    moved[3:67] = BO.encode()  # the header names Bo now
    sealed[-1] ^= 1

    with pytest.raises((SealError, Erased)):
        unseal(keyring, bytes(moved))
    with pytest.raises(SealError):
        unseal(keyring, bytes(sealed))


@pytest.mark.parametrize("garbage", [b"", b"U", b"U\x01", b"U\x01\x40" + b"a" * 64, b"U\x02\x01a"])
def test_bytes_that_only_look_sealed_are_a_seal_error(garbage: bytes) -> None:
    with pytest.raises(SealError):
        unseal(MemoryKeyring(), garbage)


def test_plain_records_pass_and_a_reader_without_keys_sees_erased() -> None:
    keyring = MemoryKeyring()
    plain = b"\x00\x00\x00\x00\x07avro"
    assert unseal_value(None, plain) == plain
    assert unseal_value(keyring, plain) == plain
    with pytest.raises(Erased):
        unseal_value(None, seal(keyring, ANNA, b"anna"))


def test_a_wrapped_key_unwraps_only_under_its_master_key_and_its_own_name() -> None:
    master, other = os.urandom(32), os.urandom(32)
    key = DataKey.new(ANNA)
    wrapped = wrap_key(master, key)

    assert key.secret not in wrapped
    assert unwrap_key(master, ANNA, key.key_id, wrapped) == key
    with pytest.raises(SealError):
        unwrap_key(other, ANNA, key.key_id, wrapped)
    with pytest.raises(SealError):
        unwrap_key(master, BO, key.key_id, wrapped)
