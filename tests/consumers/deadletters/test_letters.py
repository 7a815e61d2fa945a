"""Dead letters as ``ungebus deadletters`` reads them, from every writer of the bus: what an
operator sees (never a personal field), how each can be retried, filters and counts."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Message

import schemas
from bus import records as bus_records
from bus.limits import RecordLimits
from bus.records import Received
from connectors.gateway import Refused
from connectors.gateway import dead_letter as gateway_letter
from connectors.settings import ConnectorSettings
from consumers.deadletters.actions import (
    RETRY,
    REVEAL,
    action_record,
    actions_of,
    with_recorded_retries,
)
from consumers.deadletters.letters import (
    Filter,
    Letter,
    LetterError,
    counts,
    parse_age,
    parse_letter_at,
)
from consumers.deadletters.reading import letters_of
from consumers.deadletters.render import details, revealed, rows
from consumers.deadletters.retry import FromSource, NotRetried, Republish, from_source, plan
from streams.routing.dead_letters import dead_letter as router_letter
from tests.support import records

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
LIMITS = RecordLimits()
CPR, NAME = "1403101234", "Test Testesen"
DEADLETTER = "deadletter"


def _original(retries: int = 0) -> tuple[bytes, bytes, list[tuple[str, bytes]], str]:
    record = records.dropout_notice(pseudonym=uuid.uuid4().hex * 2)
    headers = list(schemas.cloudevent_headers(record))
    if retries:
        headers.append((schemas.RETRY_COUNT_HEADER, str(retries).encode()))
    pseudonym = record["envelope"]["subject"]["pseudonym"]
    return pseudonym.encode(), schemas.encode("dropout_notice", record), headers, pseudonym


def _by_router(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> tuple[bytes, list]:
    out = router_letter(
        DEADLETTER, reason="it went wrong", error_type="Rejected", source_topic="inbound.events",
        source_partition=3, source_offset=41, key=key, value=value, headers=headers,
        event_id="e-1", now=NOW, limits=LIMITS,
    )  # fmt: skip
    return out.value or b"", list(out.headers)


def _by_consumer(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> tuple[bytes, list]:
    source = Received("tasks.161.youth_unit", 3, 41, key, value, list(headers))
    out = bus_records.dead_letter(
        DEADLETTER, source, reason="cannot store it", error_type="Invalid", component="inbox",
        event_id="e-1", now=NOW, limits=LIMITS,
    )  # fmt: skip
    return out.value, list(out.headers)


def _by_gateway(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> tuple[bytes, list]:
    message = Message(
        topic="partner.skole.events", partition=3, offset=41, key=key, value=value,
        headers=headers,
    )  # fmt: skip
    refused = Refused("institution:916199 is not a source", "SourceNotAllowed", "e-1")
    letter, own = gateway_letter(ConnectorSettings(), message, refused, NOW)
    return letter, list(own)


Writer = Callable[[bytes, bytes, list[tuple[str, bytes]]], tuple[bytes, list[Any]]]
WRITERS: list[Writer] = [_by_router, _by_consumer, _by_gateway]


def _letter(value: bytes, own_headers: list, offset: int = 7) -> Letter:
    (letter,), unreadable = letters_of(
        [Received(DEADLETTER, 0, offset, None, value, own_headers)], 2_000_000
    )
    assert unreadable == []
    return letter


@pytest.mark.parametrize("writer", WRITERS, ids=["router", "inbox", "gateway"])
def test_every_writers_letter_reads_the_same_and_shows_nothing_personal(writer: Writer) -> None:
    key, value, headers, pseudonym = _original()
    letter = _letter(*writer(key, value, headers))

    assert (letter.at, letter.event_id, letter.kind) == ("0/7", "e-1", "dropout_notice")
    assert (letter.source_partition, letter.source_offset, letter.value) == (3, 41, value)
    assert letter.failed_at == NOW and letter.retry_count == 0 and not letter.by_reference
    printed = f"{letter.safe()}\n{rows([letter], 0)}\n{details(letter, 'note', [])}"
    for personal in (CPR, NAME, pseudonym):
        assert personal not in printed
    assert f"value {len(value):,} B" in printed
    step = plan(letter)
    assert isinstance(step, Republish)
    assert (step.topic, step.partition, step.key, step.value) == (
        letter.source_topic, 3, key, value,
    )  # fmt: skip
    assert dict(step.headers)["ce_id"] == dict(headers)["ce_id"]  # the same event id
    assert dict(step.headers)[schemas.RETRY_COUNT_HEADER] == b"1"
    assert CPR in revealed(letter, step.value) and NAME in revealed(letter, step.value)


@pytest.mark.parametrize("writer", WRITERS, ids=["router", "inbox", "gateway"])
def test_a_retried_record_that_fails_again_carries_its_count_even_by_reference(
    writer: Writer,
) -> None:
    key, value, headers, _ = _original(retries=2)
    copied = _letter(*writer(key, value, headers))
    assert copied.retry_count == 2
    step = plan(copied)
    assert isinstance(step, Republish) and step.retry_count == 3
    assert [v for n, v in step.headers if n == schemas.RETRY_COUNT_HEADER] == [b"3"]

    huge = value + b"\x00" * 1_000_000  # too large to copy: kept by reference
    letter_value, own = writer(key, huge, headers)
    referenced = _letter(letter_value, own)
    assert referenced.by_reference and referenced.headers == ()
    assert referenced.retry_count == 2  # from the letter's own headers
    assert referenced.value_sha256 == hashlib.sha256(huge).hexdigest()


def test_a_letter_kept_by_reference_is_retried_only_from_its_unchanged_source() -> None:
    key, value, headers, _ = _original()
    huge = value + b"\x00" * 1_000_000
    letter = _letter(*_by_router(key, huge, headers))
    assert isinstance(plan(letter), FromSource)

    there = Received("inbound.events", 3, 41, key, huge, headers)
    step = from_source(letter, there)
    assert isinstance(step, Republish) and step.value == huge and step.partition == 3

    other = from_source(letter, Received("inbound.events", 3, 41, key, value, headers))
    assert isinstance(other, NotRetried) and "SHA-256 differs" in other.why
    gone = from_source(letter, "retention removed everything before offset 90")
    assert isinstance(gone, NotRetried)
    assert "cannot be read back from inbound.events/3/41: retention" in gone.why


def test_what_cannot_be_retried_says_why() -> None:
    key, _value, headers, _ = _original()
    tombstone = _letter(*_by_consumer(key, None, headers))  # type: ignore[arg-type]
    assert tombstone.tombstone and "tombstone" in plan(tombstone).why  # type: ignore[union-attr]

    made = router_letter(
        DEADLETTER, reason="refused", error_type="RefusedByKafka", source_topic="tasks.161.ssp",
        source_partition=-1, source_offset=-1, key=key, value=b"\x00" * 1_000_000, headers=[],
        event_id=None, now=NOW, limits=LIMITS,
    )  # fmt: skip
    never_consumed = plan(_letter(made.value or b"", list(made.headers)))
    assert isinstance(never_consumed, NotRetried) and "never on Kafka" in never_consumed.why


def test_records_that_are_not_dead_letters_are_named_not_fatal() -> None:
    key, value, headers, _ = _original()
    found, unreadable = letters_of(
        [
            Received(DEADLETTER, 0, 1, None, b"\x00garbage", []),
            Received(DEADLETTER, 0, 2, key, value, headers),  # an event, not a letter
            Received(DEADLETTER, 0, 3, None, None, []),
        ],
        2_000_000,
    )
    assert found == []
    assert [(u.offset, u.why.split(":")[0]) for u in unreadable] == [
        (1, "does not decode"), (2, "a dropout_notice, not a dead letter"), (3, "no value"),
    ]  # fmt: skip


def test_a_cpr_quoted_in_a_reason_is_hidden() -> None:
    key, value, headers, _ = _original()
    out = router_letter(
        DEADLETTER, reason=f"ValueError: bad cpr 140310-1234 and {CPR}",
        error_type="ValueError", source_topic="inbound.events", source_partition=0,
        source_offset=1, key=key, value=value, headers=headers, event_id="e", now=NOW,
        limits=LIMITS,
    )  # fmt: skip
    letter = _letter(out.value or b"", list(out.headers))
    shown = details(letter, "", []) + rows([letter], 0)
    assert "140310-1234" not in shown and CPR not in shown and "hidden: CPR-shaped" in shown


def test_filters_counts_and_ages() -> None:
    key, value, headers, _ = _original()
    router = _letter(*_by_router(key, value, headers), offset=1)
    gateway = _letter(*_by_gateway(key, value, headers), offset=2)
    later = NOW + dt.timedelta(days=3)
    assert Filter(component="gateway").matches(gateway, later)
    assert not Filter(component="gateway").matches(router, later)
    assert Filter(reason="SourceNotAllowed").matches(gateway, later)
    assert Filter(reason="WENT wrong").matches(router, later)  # words of the reason, any case
    assert Filter(source_topic="inbound.events").matches(router, later)
    assert Filter(older_than=dt.timedelta(days=2)).matches(router, later)
    assert not Filter(newer_than=dt.timedelta(days=2)).matches(router, later)
    assert Filter().empty and not Filter(reason="x").empty

    found = counts([router, gateway], later)
    assert found.total == 2
    assert dict(found.by_component) == {"router": 1, "gateway": 1}
    assert dict(found.by_reason) == {"Rejected": 1, "SourceNotAllowed": 1}
    assert found.by_age == [("1 - 7 d", 2)]


def test_operator_input_errors_name_the_option() -> None:
    assert parse_letter_at("0/42") == (0, 42) and parse_letter_at("42") == (0, 42)
    assert parse_age("1d12h", "--older-than") == dt.timedelta(hours=36)
    with pytest.raises(LetterError, match="LETTER: 'x/1'"):
        parse_letter_at("x/1")
    with pytest.raises(LetterError, match="--older-than: 'soon' is not a duration"):
        parse_age("soon", "--older-than")


def test_an_action_record_names_the_letter_and_who_never_its_content() -> None:
    key, value, headers, pseudonym = _original()
    letter = _letter(*_by_router(key, value, headers))
    reveal = action_record(
        "operations", REVEAL, letter, principal="admin", who="ops1@host", now=NOW
    )
    retry = action_record(
        "operations", RETRY, letter, principal="admin", who="ops1@host", now=NOW,
        retry_count=1, published=(3, 99),
    )  # fmt: skip
    for personal in (CPR.encode(), NAME.encode(), pseudonym.encode()):
        assert personal not in reveal.value + retry.value + (retry.key or b"")
    done = actions_of([reveal.value, retry.value, None, b"junk"], DEADLETTER)
    assert [(a.action, a.letter, a.published) for a in done] == [
        ("reveal", "0/7", None), ("retry", "0/7", "inbound.events/3/99"),
    ]  # fmt: skip
    (recounted,) = with_recorded_retries([letter], done)
    assert (letter.retry_count, recounted.retry_count) == (0, 1)  # retried once, not failed again
    step = plan(recounted)
    assert isinstance(step, Republish) and step.retry_count == 2


def test_a_record_whose_state_stands_is_not_retried_as_the_router_would_drop_it() -> None:
    """The router remembers an event id as routed once its window commits; a record whose
    output the broker refused at that commit keeps its state (``streams.runtime.window``), so
    a retry of it would be a duplicate: the tool says so rather than re-publish."""
    import inspect

    from consumers.deadletters.retry import STATE_STANDS
    from streams.runtime import window

    assert STATE_STANDS in inspect.getsource(window)
    key, value, headers, _ = _original()
    out = router_letter(
        DEADLETTER, reason=f"Kafka refused its output for tasks.161.ssp: too large; {STATE_STANDS}",
        error_type="RefusedByKafka", source_topic="inbound.events", source_partition=0,
        source_offset=1, key=key, value=value, headers=headers, event_id="e", now=NOW,
        limits=LIMITS,
    )  # fmt: skip
    step = plan(_letter(out.value or b"", list(out.headers)))
    assert isinstance(step, NotRetried) and "would be a duplicate" in step.why
    refused_in_produce = router_letter(
        DEADLETTER, reason="Kafka refused it; its state changes are taken back",
        error_type="RefusedByKafka", source_topic="inbound.events", source_partition=0,
        source_offset=1, key=key, value=value, headers=headers, event_id="e", now=NOW,
        limits=LIMITS,
    )  # fmt: skip
    retried = plan(_letter(refused_in_produce.value or b"", list(refused_in_produce.headers)))
    assert isinstance(retried, Republish)
