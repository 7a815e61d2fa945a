"""Commit windows without Kafka: the state store (staged tables), the router's store, and the
window.

The window gets a fake writer with ``OutputWriter``'s interface whose groups of records
(:class:`Deliveries`) are acknowledged, or refused, only when the test says so. Nothing here
sleeps on the clock: ``settle`` lets every ready task run, and ``due`` reads a fake clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import pytest
from confluent_kafka import KafkaError

import schemas
import streams.runtime.window
from bus.limits import RecordLimits
from streams.routing.consent import ConsentState
from streams.routing.dead_letters import DeadLetters
from streams.routing.held import HeldEvent, SeenEvents
from streams.routing.outputs import InMessage, Output
from streams.routing.router import SubjectStore
from streams.routing.store import StateTooLarge
from streams.runtime.faust_fixes import TableChangelog
from streams.runtime.state import Changes, StagedTables
from streams.runtime.window import Window
from streams.runtime.writer import Deliveries, DeliveryFailed, OutputWriter, Refusal, Refused
from tests.support import records

T = TypeVar("T")

OUT = "out"  # the topic of every window output here
DEADLETTER = "deadletter"
CHANGELOG = "state-changelog"


def run_async(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """A plain test function running ``test`` on a fresh event loop (no pytest-asyncio here)."""

    def run() -> None:
        asyncio.run(test())

    return run


async def settle() -> None:
    """Let every task that can go on run until it waits again (no wall-clock time passes)."""
    for _ in range(100):
        await asyncio.sleep(0)


def started(coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    return asyncio.ensure_future(coroutine)


# -- StagedTables -----------------------------------------------------------------------------
class Overlay:
    """One table of a :class:`StagedTables`, as the tests below stage and read it."""

    def __init__(self, table: dict[bytes, bytes]) -> None:
        self.tables = StagedTables({"t": table})

    def get(self, key: str) -> bytes | None:
        return self.tables.get("t", key)

    def set(self, key: str, value: bytes | None) -> None:
        self.tables.set("t", key, value)

    def seal(self) -> Changes:
        return self.tables.seal()

    def write(self, sealed: Changes) -> None:
        self.tables.write(sealed)


def test_reads_see_the_open_window_over_sealed_windows_over_the_table() -> None:
    overlay = Overlay({b"a": b"table", b"b": b"table", b"c": b"table"})
    overlay.set("a", b"sealed 1")
    overlay.set("b", b"sealed 1")
    overlay.seal()
    overlay.set("a", b"sealed 2")
    overlay.seal()
    overlay.set("a", b"open")

    assert overlay.get("a") == b"open"
    assert overlay.get("b") == b"sealed 1"
    assert overlay.get("c") == b"table"
    assert overlay.get("d") is None


def test_the_newest_sealed_window_wins_over_older_ones() -> None:
    overlay = Overlay({})
    overlay.set("a", b"1")
    overlay.seal()
    overlay.set("a", b"2")
    overlay.seal()

    assert overlay.get("a") == b"2"


def test_none_hides_a_table_value_from_the_open_or_a_sealed_window() -> None:
    overlay = Overlay({b"a": b"table", b"b": b"table"})
    overlay.set("a", None)
    overlay.seal()
    overlay.set("b", None)

    assert overlay.get("a") is None
    assert overlay.get("b") is None


def test_set_only_stages_the_table_is_untouched_until_write() -> None:
    table: dict[bytes, bytes] = {b"a": b"table"}
    overlay = Overlay(table)
    overlay.set("a", b"new")
    overlay.set("b", b"new")
    overlay.seal()

    assert table == {b"a": b"table"}


def test_write_applies_sealed_changes_to_the_table_oldest_first() -> None:
    table: dict[bytes, bytes] = {b"gone": b"table", b"kept": b"table"}
    overlay = Overlay(table)
    overlay.set("gone", None)
    overlay.set("a", b"1")
    first = overlay.seal()
    overlay.set("a", b"2")
    overlay.set("missing", None)  # deleting a key the table lacks is fine
    second = overlay.seal()

    overlay.write(first)
    assert table == {b"kept": b"table", b"a": b"1"}
    overlay.write(second)
    assert table == {b"kept": b"table", b"a": b"2"}


def test_write_out_of_order_raises_and_writes_nothing() -> None:
    table: dict[bytes, bytes] = {}
    overlay = Overlay(table)
    overlay.set("a", b"1")
    first = overlay.seal()
    overlay.set("b", b"2")
    second = overlay.seal()

    with pytest.raises(RuntimeError):
        overlay.write(second)
    assert table == {}
    overlay.write(first)
    with pytest.raises(RuntimeError):  # not twice either
        overlay.write(first)
    assert table == {b"a": b"1"}


def test_write_refuses_changes_that_were_never_sealed() -> None:
    overlay = Overlay({})
    overlay.set("a", b"1")

    with pytest.raises(RuntimeError):
        overlay.write({("t", "a"): b"1"})
    with pytest.raises(RuntimeError):
        overlay.write(overlay.tables.pending)


def test_a_key_written_by_an_older_window_and_changed_in_the_open_one_reads_the_open_value() -> (
    None
):
    table: dict[bytes, bytes] = {}
    overlay = Overlay(table)
    overlay.set("a", b"old")
    sealed = overlay.seal()
    overlay.set("a", b"open")

    assert overlay.get("a") == b"open"  # before the older window is written
    overlay.write(sealed)
    assert table == {b"a": b"old"}
    assert overlay.get("a") == b"open"  # and after


def test_writing_an_older_window_does_not_hide_a_newer_sealed_one() -> None:
    overlay = Overlay({})
    overlay.set("a", b"old")
    older = overlay.seal()
    overlay.set("a", None)
    overlay.seal()

    overlay.write(older)
    assert overlay.get("a") is None


def test_undo_takes_back_what_the_record_staged_in_every_table_and_nothing_before() -> None:
    tables = StagedTables({"x": {b"a": b"table"}, "y": {}})
    tables.set("x", "a", b"earlier record")
    tables.begin()
    tables.set("x", "a", b"this record")
    tables.set("y", "b", b"this record")
    tables.undo()

    assert tables.get("x", "a") == b"earlier record"
    assert tables.get("y", "b") is None


def test_an_entry_over_max_entry_bytes_is_refused_when_staged() -> None:
    tables = StagedTables({"t": {}}, max_entry_bytes=10)
    tables.set("t", "key", b"1234567")  # 3 + 7 bytes: fits

    with pytest.raises(StateTooLarge):
        tables.set("t", "key", b"12345678")
    assert tables.get("t", "key") == b"1234567"


def test_write_records_each_change_to_its_tables_changelog_and_a_delete_only_of_a_held_key() -> (
    None
):
    produced: list[Output] = []

    class Producer:
        def produce(self, outputs: Sequence[Output]) -> None:
            produced.extend(outputs)

    class Changelog:
        def record(self, key: bytes, value: bytes | None) -> Output:
            return Output("t-changelog", key, value, [])

    data = {b"gone": b"table"}
    tables = StagedTables({"t": data, "plain": {}}, changelogs={"t": Changelog()})
    tables.set("t", "a", b"1")
    tables.set("t", "gone", None)
    tables.set("t", "never", None)
    tables.set("plain", "b", b"2")  # a table without a changelog: written, not recorded
    tables.write(tables.seal(), Producer())

    assert data == {b"a": b"1"}
    assert tables.table("plain") == {b"b": b"2"}
    assert [(o.key, o.value) for o in produced] == [(b"a", b"1"), (b"gone", None)]


# -- SubjectStore -----------------------------------------------------------------------------
def test_subject_store_seal_then_write_round_trips_through_plain_dicts() -> None:
    consents: dict[bytes, bytes] = {}
    held: dict[bytes, bytes] = {b"p2": b"to be dropped"}
    seen: dict[bytes, bytes] = {}
    tables = StagedTables({"consents": consents, "held": held, "seen": seen})
    store = SubjectStore(tables)
    now = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    state = ConsentState().granted(records.consent("education_guidance", "uu"))
    waiting = (HeldEvent("e-1", b"\x00wire", now, frozenset({"t-1"}), "00-trace"),)
    routed = SeenEvents().add("e-1", now, keep_after=now - dt.timedelta(days=90))

    store.set_consents("p1", state)
    store.set_held("p1", waiting)
    store.set_held("p2", ())  # nothing held: the key is deleted
    store.set_seen("p1", routed)
    sealed = tables.seal()

    assert (consents, held, seen) == ({}, {b"p2": b"to be dropped"}, {})
    assert store.consents("p1") == state
    assert store.held("p1") == waiting
    assert store.held("p2") == ()
    assert store.seen("p1") == routed

    tables.write(sealed)

    assert set(consents) == set(seen) == set(held) == {b"p1"}
    again = SubjectStore(StagedTables({"consents": consents, "held": held, "seen": seen}))
    # the tables alone hold the state
    assert again.consents("p1") == state
    assert again.held("p1") == waiting
    assert again.seen("p1") == routed


def test_subject_store_writes_windows_in_the_order_they_were_sealed() -> None:
    seen: dict[bytes, bytes] = {}
    tables = StagedTables({"consents": {}, "held": {}, "seen": seen})
    store = SubjectStore(tables)
    now = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    store.set_seen("p", SeenEvents().add("e-1", now, now))
    first = tables.seal()
    store.set_seen("p", store.seen("p").add("e-2", now, now))
    second = tables.seal()

    with pytest.raises(RuntimeError):
        tables.write(second)
    tables.write(first)
    tables.write(second)
    assert SeenEvents.from_json(seen[b"p"]).occurred == (("e-1", now), ("e-2", now))


# -- the window's fakes -----------------------------------------------------------------------
class FakeWriter:
    """``OutputWriter``'s interface. Kafka acknowledges (or refuses) a group of records only
    when the test calls ``acknowledge`` (or ``refuse``); an empty group is delivered at once,
    as with the real writer."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.outputs: list[Deliveries] = []  # each closed window's outputs, oldest first
        self.changelogs: list[Deliveries] = []  # the groups state writes were produced into
        self.produced: dict[Deliveries, list[Output]] = {}
        self.sources: dict[Deliveries, list[InMessage | None]] = {}
        self.refuse_at_produce: set[bytes] = set()  # keys of outputs librdkafka refuses
        self._open = Deliveries()
        self._gates: dict[Deliveries, asyncio.Event] = {}
        self._refused: dict[Deliveries, BaseException] = {}

    def produce(self, outputs: Sequence[Output], source: InMessage | None = None) -> None:
        for index, output in enumerate(outputs):
            if output.key in self.refuse_at_produce and output.topic != DEADLETTER:
                raise Refused(output, KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), index)
            self.produced.setdefault(self._open, []).append(output)
            self.sources.setdefault(self._open, []).append(source)
            self._open.produced += 1
            self.log.append(f"{output.topic}:{(output.key or b'').decode()}")

    def cut(self) -> Deliveries:
        closed, self._open = self._open, Deliveries()
        self.outputs.append(closed)
        return closed

    @contextmanager
    def into(self, deliveries: Deliveries) -> Iterator[None]:
        self.changelogs.append(deliveries)
        kept, self._open = self._open, deliveries
        try:
            yield
        finally:
            self._open = kept

    async def delivered(self, deliveries: Deliveries) -> None:
        if deliveries.produced == 0:
            return
        await self._gate(deliveries).wait()
        if deliveries in self._refused:
            raise self._refused[deliveries]

    def acknowledge(self, deliveries: Deliveries, refusing: Sequence[bytes] = ()) -> None:
        """Kafka acknowledges the group, but refuses for good the records keyed ``refusing``."""
        assert deliveries.produced > 0, "an empty group needs no acknowledgement"
        for output, source in zip(self.produced[deliveries], self.sources[deliveries], strict=True):
            if output.key in refusing:
                refusal = Refusal(
                    source, output.topic, 0, output.key, output.value, [], "too large"
                )
                deliveries.refused.append(refusal)
        deliveries.acknowledged = deliveries.produced - len(deliveries.refused)
        self._gate(deliveries).set()

    def refuse(self, deliveries: Deliveries, error: BaseException) -> None:
        self._refused[deliveries] = error
        self._gate(deliveries).set()

    def _gate(self, deliveries: Deliveries) -> asyncio.Event:
        return self._gates.setdefault(deliveries, asyncio.Event())


class FakeStream:
    """faust's manual-ack stream: records the events acked."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.acked: list[str] = []

    async def ack(self, event: str) -> None:
        self.acked.append(event)
        self.log.append(f"ack:{event}")


class ChangelogTopic:
    def get_topic_name(self) -> str:
        return CHANGELOG


class FakeTable:
    """What ``TableChangelog`` uses of a faust table."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog_topic = ChangelogTopic()

    def partition_for_key(self, key: bytes) -> int:
        return 0


@dataclass
class Rig:
    """A window over a state store whose one table (``t``) has a changelog."""

    depth: int = 2
    max_records: int = 500
    max_wait_s: float = 0.02
    log: list[str] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.writer = FakeWriter(self.log)
        self.stream = FakeStream(self.log)
        self.table = FakeTable()
        table = TableChangelog(self.table)
        self.state = StagedTables({"t": table}, changelogs={"t": table})
        self.window = Window(
            cast(OutputWriter, self.writer),  # the fake has every method the window uses
            self.state,
            self.failures.append,
            dead_letters=DeadLetters(DEADLETTER, RecordLimits()),
            max_records=self.max_records,
            max_wait_s=self.max_wait_s,
            depth=self.depth,
        )

    def handle(self, record: str, **changes: bytes | None) -> None:
        """What an agent does for one record: stage its state changes, add its output."""
        self.state.begin()
        for key, value in changes.items():
            self.state.set("t", key, value)
        source = InMessage("in", 0, len(self.log), record.encode(), b"original", [])
        self.window.add([Output(OUT, record.encode(), b"task", [])], self.stream, record, source)

    def deliver_outputs(self, window: int) -> None:
        self.writer.acknowledge(self.writer.outputs[window])

    def deliver_changelog(self, index: int) -> None:
        self.writer.acknowledge(self.writer.changelogs[index])

    @property
    def table_and_acks(self) -> list[str]:
        """The log without the window outputs: changelog records (table writes) and acks."""
        return [line for line in self.log if not line.startswith(f"{OUT}:")]


# -- Window: when records are acked and tables written ----------------------------------------
@run_async
async def test_records_are_acked_only_after_outputs_and_changelog_are_delivered() -> None:
    rig = Rig()
    rig.handle("r1", k1=b"v1")
    rig.handle("r2")
    await rig.window.close()
    await settle()
    assert rig.stream.acked == []

    rig.deliver_outputs(0)
    await settle()
    assert rig.table.data == {b"k1": b"v1"}
    [changelog] = rig.writer.changelogs
    assert [(o.topic, o.key, o.value) for o in rig.writer.produced[changelog]] == [
        (CHANGELOG, b"k1", b"v1")
    ]
    assert rig.stream.acked == []  # the changelog record is not acknowledged yet

    rig.deliver_changelog(0)
    await settle()
    assert rig.stream.acked == ["r1", "r2"]


@run_async
async def test_the_table_is_written_only_after_the_window_outputs_are_delivered() -> None:
    rig = Rig()
    rig.table.data[b"gone"] = b"table"
    rig.handle("r1", k1=b"v1", gone=None)
    await rig.window.close()
    await settle()

    assert rig.table.data == {b"gone": b"table"}
    assert rig.writer.changelogs == []
    assert rig.state.get("t", "k1") == b"v1"  # reads see the committing window meanwhile
    assert rig.state.get("t", "gone") is None

    rig.deliver_outputs(0)
    await settle()
    assert rig.table.data == {b"k1": b"v1"}
    assert rig.table_and_acks == [f"{CHANGELOG}:k1", f"{CHANGELOG}:gone"]


@run_async
async def test_a_window_without_state_changes_is_acked_once_its_outputs_are_delivered() -> None:
    rig = Rig()
    rig.handle("r1")
    await rig.window.close()

    rig.deliver_outputs(0)
    await settle()
    assert rig.stream.acked == ["r1"]


@run_async
async def test_a_later_window_is_never_written_or_acked_before_an_earlier_one() -> None:
    rig = Rig(depth=3)
    for n in (1, 2, 3):
        rig.handle(f"r{n}", **{f"k{n}": b"v"})
        await rig.window.close()

    rig.deliver_outputs(2)  # Kafka acknowledges the newest windows first
    rig.deliver_outputs(1)
    await settle()
    assert rig.table.data == {}
    assert rig.stream.acked == []

    rig.deliver_outputs(0)
    await settle()
    assert rig.table.data == {b"k1": b"v"}  # window 2 waits for window 1's changelog
    assert rig.stream.acked == []

    rig.deliver_changelog(0)
    await settle()
    rig.deliver_changelog(1)
    await settle()
    rig.deliver_changelog(2)
    await settle()
    assert rig.table_and_acks == [
        f"{CHANGELOG}:k1",
        "ack:r1",
        f"{CHANGELOG}:k2",
        "ack:r2",
        f"{CHANGELOG}:k3",
        "ack:r3",
    ]


@run_async
async def test_the_agent_handles_the_next_window_while_one_commits() -> None:
    rig = Rig()
    rig.handle("r1", k=b"1")
    await rig.window.close()
    rig.handle("r2", k=b"2")  # the open window reads and changes what window 1 wrote

    assert rig.state.get("t", "k") == b"2"
    rig.deliver_outputs(0)
    await settle()
    rig.deliver_changelog(0)
    await settle()
    assert rig.table.data == {b"k": b"1"}
    assert rig.state.get("t", "k") == b"2"
    assert rig.stream.acked == ["r1"]

    commit = started(rig.window.commit())
    await settle()
    rig.deliver_outputs(1)
    await settle()
    rig.deliver_changelog(1)
    await settle()
    assert commit.done()
    assert rig.table.data == {b"k": b"2"}
    assert rig.stream.acked == ["r1", "r2"]


# -- Window: depth and commit -----------------------------------------------------------------
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_close_waits_only_when_depth_windows_commit_and_then_for_the_oldest(depth: int) -> None:
    async def scenario() -> None:
        rig = Rig(depth=depth)
        for n in range(depth):
            rig.handle(f"r{n}")
            close = started(rig.window.close())
            await settle()
            assert close.done(), f"close {n + 1} of {depth} must not wait"

        rig.handle("over")
        close = started(rig.window.close())
        await settle()
        assert not close.done()

        if depth > 1:
            rig.deliver_outputs(1)  # a younger window delivered: still waiting for the oldest
            await settle()
            assert not close.done()
        rig.deliver_outputs(0)
        await settle()
        assert close.done()
        assert rig.stream.acked == (["r0", "r1"] if depth > 1 else ["r0"])

    asyncio.run(scenario())


@run_async
async def test_commit_waits_until_every_window_has_committed() -> None:
    rig = Rig(depth=3)
    rig.handle("r1")
    await rig.window.close()
    rig.handle("r2")
    await rig.window.close()
    rig.handle("r3", k=b"v")
    commit = started(rig.window.commit())
    await settle()

    rig.deliver_outputs(2)
    await settle()
    assert not commit.done()
    rig.deliver_outputs(0)
    rig.deliver_outputs(1)
    await settle()
    assert not commit.done()  # window 3's changelog is not acknowledged yet
    assert rig.stream.acked == ["r1", "r2"]

    rig.deliver_changelog(2)
    await settle()
    assert commit.done()
    assert rig.stream.acked == ["r1", "r2", "r3"]
    assert rig.failures == []


@run_async
async def test_commit_with_nothing_pending_returns_at_once() -> None:
    rig = Rig()
    commit = started(rig.window.commit())
    await settle()
    assert commit.done()
    assert rig.failures == []


# -- Window: failures -------------------------------------------------------------------------
@run_async
async def test_refused_outputs_call_fail_and_ack_nothing_of_that_window_or_later_ones() -> None:
    rig = Rig(depth=3)
    rig.handle("r1", k1=b"v")
    await rig.window.close()
    rig.handle("r2", k2=b"v")
    await rig.window.close()
    rig.handle("r3", k3=b"v")
    commit = started(rig.window.commit())
    await settle()

    rig.deliver_outputs(0)
    await settle()
    rig.deliver_changelog(0)
    await settle()
    assert rig.stream.acked == ["r1"]

    refused = DeliveryFailed("1 of 1 outputs not acknowledged: Broker: Not enough in-sync replicas")
    rig.writer.refuse(rig.writer.outputs[1], refused)
    rig.deliver_outputs(2)
    await settle()

    assert commit.done()
    assert commit.exception() is refused
    assert rig.failures
    assert all(failure is refused for failure in rig.failures)
    assert rig.stream.acked == ["r1"]
    assert rig.table.data == {b"k1": b"v"}  # nor are windows 2 and 3 written


@run_async
async def test_a_refused_changelog_calls_fail_and_acks_nothing_of_its_window() -> None:
    rig = Rig()
    rig.handle("r1", k1=b"v")
    commit = started(rig.window.commit())
    await settle()
    rig.deliver_outputs(0)
    await settle()

    refused = DeliveryFailed("1 of 1 outputs not acknowledged: timed out")
    rig.writer.refuse(rig.writer.changelogs[0], refused)
    await settle()

    assert commit.done()
    assert commit.exception() is refused
    assert rig.failures == [refused]
    assert rig.stream.acked == []


@run_async
async def test_a_window_closed_after_a_failure_acks_nothing() -> None:
    rig = Rig()
    rig.handle("r1", k1=b"v")
    first = started(rig.window.commit())
    await settle()
    rig.deliver_outputs(0)
    await settle()
    rig.writer.refuse(rig.writer.changelogs[0], DeliveryFailed("timed out"))
    await settle()
    assert first.done() and rig.failures  # `fail` was called and returned

    rig.handle("r2", k2=b"v")
    second = started(rig.window.commit())
    await settle()
    if len(rig.writer.outputs) > 1:
        rig.deliver_outputs(1)
        await settle()
    if len(rig.writer.changelogs) > 1:
        rig.deliver_changelog(1)
        await settle()
    for task in (first, second):
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: either outcome is acceptable for the commit itself

    assert rig.stream.acked == []
    assert len(rig.failures) == 1  # said once, not again by every later window


# -- Window: full and due ---------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(streams.runtime.window, "time", clock)
    return clock


def test_a_window_is_full_at_max_records_counting_only_records_to_ack() -> None:
    rig = Rig(max_records=3)
    rig.handle("r1")
    rig.handle("r2")
    rig.window.add([Output(OUT, b"timer", b"audit", [])])  # a timer's output: no record
    assert not rig.window.full

    rig.handle("r3")
    assert rig.window.full

    async def close() -> None:
        await rig.window.close()
        assert not rig.window.full

    asyncio.run(close())


def test_a_window_is_due_max_wait_s_after_its_first_record(clock: Clock) -> None:
    rig = Rig(max_wait_s=0.25)  # binary fractions: exact sums
    assert not rig.window.due
    clock.now += 10
    assert not rig.window.due  # an empty window is never due
    rig.window.add([Output(OUT, b"timer", b"audit", [])])
    assert not rig.window.due  # outputs without a record do not open it

    rig.handle("r1")
    clock.now += 0.125
    rig.handle("r2")  # a later record does not restart the wait
    assert not rig.window.due
    clock.now += 0.125
    assert rig.window.due

    async def close_then_next() -> None:
        await rig.window.close()
        assert not rig.window.due
        clock.now += 10
        rig.handle("r3")  # the next window waits from its own first record
        clock.now += 0.125
        assert not rig.window.due
        clock.now += 0.125
        assert rig.window.due

    asyncio.run(close_then_next())


# -- Window: one record's refusal is that record's dead letter, not the window's failure ---------
def _letters(rig: Rig, group: Deliveries) -> list[dict[str, Any]]:
    return [
        schemas.decode(o.value).record
        for o in rig.writer.produced[group]
        if o.topic == DEADLETTER and o.value is not None
    ]


@run_async
async def test_a_record_librdkafka_refuses_becomes_its_dead_letter_and_leaves_no_state() -> None:
    rig = Rig()
    rig.handle("r1", k1=b"v1")
    rig.writer.refuse_at_produce.add(b"r2")
    rig.handle("r2", k1=b"changed by r2", k2=b"v2")
    rig.handle("r3", k3=b"v3")
    await rig.window.close()

    [window] = rig.writer.outputs
    assert [o.topic for o in rig.writer.produced[window]] == [OUT, DEADLETTER, OUT]
    [letter] = _letters(rig, window)
    assert letter["original_key"] == b"r2" and letter["original_value"] == b"original"
    assert letter["error_type"] == "RefusedByKafka"
    assert "Kafka refused a record for out" in letter["reason"]
    assert "its state changes are taken back" in letter["reason"]
    rig.deliver_outputs(0)
    await settle()
    rig.deliver_changelog(0)
    await settle()
    assert rig.table.data == {b"k1": b"v1", b"k3": b"v3"}
    assert rig.stream.acked == ["r1", "r2", "r3"]  # r2 once its dead letter was acknowledged
    assert rig.failures == []


@run_async
async def test_a_record_the_broker_refuses_for_good_is_dead_lettered_before_its_window_acks() -> (
    None
):
    rig = Rig()
    rig.handle("r1", k1=b"v1")
    rig.handle("r2", k2=b"v2")
    rig.handle("r3", k3=b"v3")
    await rig.window.close()
    rig.writer.acknowledge(rig.writer.outputs[0], refusing=[b"r2", b"r3"])  # one batch
    await settle()

    [alone] = rig.writer.changelogs  # r2 produced again, alone
    assert [o.key for o in rig.writer.produced[alone]] == [b"r2"]
    rig.writer.acknowledge(alone, refusing=[b"r2"])  # refused alone: r2's own
    await settle()
    [_, alone] = rig.writer.changelogs  # then r3, alone: it was only beside r2
    assert [o.key for o in rig.writer.produced[alone]] == [b"r3"]
    rig.writer.acknowledge(alone)
    await settle()

    [*_, letters] = rig.writer.changelogs  # the dead letters, in their own group
    [letter] = _letters(rig, letters)
    assert letter["original_key"] == b"r2" and letter["error_type"] == "RefusedByKafka"
    assert "Kafka refused its output for out: too large" in letter["reason"]
    assert rig.stream.acked == [] and rig.table.data == {}

    rig.writer.acknowledge(letters)  # the dead letter is on Kafka
    await settle()
    rig.writer.acknowledge(rig.writer.changelogs[-1])  # then the window's state, as always
    await settle()
    assert rig.table.data == {b"k1": b"v1", b"k2": b"v2", b"k3": b"v3"}  # sealed: it stands
    assert rig.stream.acked == ["r1", "r2", "r3"]
    assert rig.failures == []


@run_async
async def test_a_dead_letter_kafka_does_not_take_fails_the_window() -> None:
    rig = Rig()
    rig.handle("r1")
    commit = started(rig.window.commit())
    await settle()
    rig.writer.acknowledge(rig.writer.outputs[0], refusing=[b"r1"])
    await settle()
    rig.writer.acknowledge(rig.writer.changelogs[0], refusing=[b"r1"])  # alone too
    await settle()
    away = DeliveryFailed("broker away")
    rig.writer.refuse(rig.writer.changelogs[1], away)
    await settle()

    assert commit.done() and commit.exception() is away
    assert rig.stream.acked == []
    assert rig.failures == [away]
