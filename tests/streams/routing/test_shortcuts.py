"""The router's shortcuts give exactly what the plain computations they replace give."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import build_headers, to_json
from schemas.mapping import to_millis
from streams.routing.decide import TASK_NAMESPACE, InboundEvent, due_by, task_id
from streams.routing.policy import TakeOverWithin, load_policy
from tests.support import records

CET = dt.timezone(dt.timedelta(hours=1))
MOMENTS = st.datetimes(min_value=dt.datetime(1900, 1, 1), timezones=st.sampled_from([dt.UTC, CET]))


@given(st.text(), st.sampled_from(["161", "165", "x"]), st.sampled_from(["youth_unit", "ssp"]))
def test_task_id_is_the_uuid5_of_event_municipality_and_unit(
    event_id: str, kommunekode: str, unit: str
) -> None:
    try:
        expected = str(uuid.uuid5(TASK_NAMESPACE, f"{event_id}/{kommunekode}/{unit}"))
    except UnicodeEncodeError:  # a lone surrogate: both refuse it alike
        with pytest.raises(UnicodeEncodeError):
            task_id(event_id, kommunekode, unit)
        return
    assert task_id(event_id, kommunekode, unit) == expected


def _day_by_day(start: dt.datetime, working_days: int) -> dt.datetime:
    day, left = start, working_days
    while left > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


@pytest.mark.parametrize("tz", [dt.UTC, CET, None])
def test_working_days_count_like_a_calendar(tz: dt.tzinfo | None) -> None:
    monday = dt.datetime(2026, 11, 2, 23, 30, tzinfo=tz)
    for offset in range(7):  # every weekday as the start
        start = monday + dt.timedelta(days=offset)
        for working_days in range(0, 31):
            due = due_by(start, TakeOverWithin(working_days=working_days))
            assert due == _day_by_day(start, working_days)
            assert due.tzinfo is start.tzinfo


def _generic_json(value: Any) -> str:
    """What the encoder writes, with no shortcut taken."""

    def default(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            utc = value.astimezone(dt.UTC)
            return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        raise TypeError(f"cannot JSON-encode {type(value).__name__}")

    return json.dumps(value, default=default, ensure_ascii=False, sort_keys=True)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.binary(max_size=20),
    st.dates(),
    MOMENTS,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@given(VALUES)
def test_to_json_writes_what_the_encoder_writes(value: Any) -> None:
    assert to_json(value) == _generic_json(value)


def test_to_json_of_what_it_cannot_write_fails_alike() -> None:
    for value in (object(), {1.5: "a", "b": 2}, dt.time(12)):
        with pytest.raises(TypeError) as plain:
            _generic_json(value)
        with pytest.raises(TypeError) as short:
            to_json(value)
        assert str(short.value) == str(plain.value)


@given(MOMENTS)
def test_ce_time_header_is_utc_to_the_millisecond(moment: dt.datetime) -> None:
    for _ in range(2):  # the second time from the cache, when UTC
        headers = dict(
            build_headers(ce_id="e", ce_type="t", ce_source="s", ce_time=moment, ce_subject="p")
        )
        expected = to_millis(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert headers["ce_time"] == expected.encode()


def test_rule_detail_paths_are_its_fields_sorted_once() -> None:
    for rule in load_policy().rules:
        assert rule.detail_paths == tuple(sorted(set(rule.fields)))
        extra = rule.with_consent.fields if rule.with_consent else ()
        assert rule.detail_paths_with_consent == tuple(sorted(set(rule.fields) | set(extra)))


def test_inbound_event_reads_the_envelope() -> None:
    record = records.release_planning(age=22)
    event = InboundEvent("release_planning", record)
    envelope = record["envelope"]
    assert event.event_id == envelope["event_id"]
    assert event.event_type == envelope["event_type"]
    assert event.pseudonym == envelope["subject"]["pseudonym"]
    assert event.birth_date == envelope["subject"]["birth_date"]
    assert event.occurred_at == envelope["occurred_at"]
    assert event.source_kind == "prison"
    assert event.age == 22
    # Equality and repr stay those of (name, record).
    assert event == InboundEvent("release_planning", record)
    assert repr(event) == f"InboundEvent(name='release_planning', record={record!r})"
