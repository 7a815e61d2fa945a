"""The inbox's wire boundary with sealed personal fields: a task's ``sealed_details`` opened for
the caseworker, a take-over's note sealed with the person's existing key."""

from __future__ import annotations

import schemas
from bus.crypto import MemoryKeyring, unseal_with
from bus.sealed_fields import seal_map
from consumers.inbox.records import PassedOver, Rejected, acknowledgement, read
from consumers.inbox.tasks import TakeOver, Task
from tests.consumers.inbox.test_records import NOW, YOUTH, routed

PSEUDONYM = "ab" * 32
DETAILS = {"envelope.subject.cpr": '"1403091234"', "envelope.subject.name": '"Test Testsen"'}


def _sealed_task(keyring: MemoryKeyring) -> bytes:
    sealed = seal_map(keyring, PSEUDONYM, DETAILS)
    return schemas.encode("routed_task", routed(details={}, sealed_details=sealed))


def test_sealed_details_are_opened_for_the_caseworker() -> None:
    keyring = MemoryKeyring()
    value = _sealed_task(keyring)
    assert b"1403091234" not in value and b"Testsen" not in value
    task = read(YOUTH, value, None, keyring=keyring)
    assert isinstance(task, Task)
    assert task.details == DETAILS


def test_plain_details_of_a_task_written_before_sealing_still_show() -> None:
    v1 = {k: v for k, v in routed(details=DETAILS).items() if k != "sealed_details"}
    value = schemas.encode_version("routed_task", 1, v1)
    task = read(YOUTH, value, None, keyring=MemoryKeyring())
    assert isinstance(task, Task) and task.details == DETAILS


def test_a_task_of_an_erased_person_is_passed_over() -> None:
    keyring = MemoryKeyring()
    value = _sealed_task(keyring)
    keyring.erase(PSEUDONYM)
    passed = read(YOUTH, value, None, keyring=keyring)
    assert passed == PassedOver("t-1", "e-1", "161", "youth_unit", PSEUDONYM)


def test_sealed_details_that_do_not_open_are_a_dead_letter_reason() -> None:
    keyring = MemoryKeyring()
    sealed = bytearray(seal_map(keyring, PSEUDONYM, DETAILS))
    sealed[-1] ^= 1
    value = schemas.encode("routed_task", routed(details={}, sealed_details=bytes(sealed)))
    rejected = read(YOUTH, value, None, keyring=keyring)
    assert isinstance(rejected, Rejected)
    assert rejected.error_type == "seal:invalid"
    assert "1403091234" not in rejected.reason


def test_a_note_goes_out_sealed_with_the_persons_key() -> None:
    keyring = MemoryKeyring()
    key = keyring.sealing_key(PSEUDONYM)
    task = read(YOUTH, _sealed_task(keyring), None, keyring=keyring)
    assert isinstance(task, Task)
    out = acknowledgement("task-acks.161", task, TakeOver("yu-1", NOW, "phoned the mother"), key)
    assert b"phoned" not in out.value
    record = schemas.decode(out.value).record
    assert record["note"] is None
    assert unseal_with(key, record["sealed_note"]) == b"phoned the mother"


def test_without_a_key_the_take_over_goes_out_without_its_note() -> None:
    task = read(YOUTH, schemas.encode("routed_task", routed()), None)
    assert isinstance(task, Task)
    out = acknowledgement("task-acks.161", task, TakeOver("yu-1", NOW, "phoned the mother"))
    record = schemas.decode(out.value).record
    assert (record["note"], record["sealed_note"]) == (None, None)
    assert b"phoned" not in out.value


def test_a_version_1_take_over_note_still_reads() -> None:
    record = {
        "task_id": "t", "event_id": "e", "unit": "youth_unit", "kommunekode": "161",
        "subject_pseudonym": PSEUDONYM, "taken_over_by": "yu-1", "taken_over_at": NOW,
        "note": "phoned",
    }  # fmt: skip
    read_back = schemas.decode(schemas.encode_version("task_taken_over", 1, record)).record
    assert (read_back["note"], read_back["sealed_note"]) == ("phoned", None)


def test_details_sealed_under_another_persons_key_are_a_dead_letter_reason() -> None:
    keyring = MemoryKeyring()
    sealed = seal_map(keyring, "cd" * 32, DETAILS)
    value = schemas.encode("routed_task", routed(details={}, sealed_details=sealed))
    rejected = read(YOUTH, value, None, keyring=keyring)
    assert isinstance(rejected, Rejected) and "another person's key" in rejected.reason
