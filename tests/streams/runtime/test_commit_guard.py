"""The router never commits a partition past a record it read and did not acknowledge."""

from __future__ import annotations

import asyncio
import weakref
from collections import defaultdict
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP
from intervaltree import IntervalTree

from streams.runtime.commit_guard import commit_head, may_commit
from streams.runtime.faust_fixes import _Consumer

INBOUND = TP("inbound.dropout", 3)


def test_nothing_read_since_a_seek_commits_nothing() -> None:
    assert commit_head(first_read=None, committed=40) is None
    assert not may_commit(None, lowest_acked=40)


def test_acknowledged_from_where_reading_started_may_be_committed() -> None:
    assert may_commit(commit_head(first_read=40, committed=40), lowest_acked=40)
    assert may_commit(commit_head(first_read=0, committed=None), lowest_acked=0)


def test_a_record_read_and_not_acknowledged_holds_the_commit_back() -> None:
    assert not may_commit(commit_head(first_read=40, committed=40), lowest_acked=41)
    assert not may_commit(commit_head(first_read=0, committed=None), lowest_acked=3)


def test_records_gone_before_they_were_read_are_no_hole() -> None:
    """Sought to 40, but retention had deleted up to 45: Kafka's first record is 45."""
    assert may_commit(commit_head(first_read=45, committed=40), lowest_acked=45)


def test_after_a_commit_the_next_one_starts_where_it_ended() -> None:
    head = commit_head(first_read=40, committed=90)
    assert may_commit(head, lowest_acked=90)
    assert not may_commit(head, lowest_acked=91)


def _consumer(kind: type, first_read: int | None, committed: int | None, acked: list[int]) -> Any:
    """faust's consumer state for one partition, as its commit sees it (no broker needed)."""
    consumer = object.__new__(kind)
    consumer._acked = defaultdict(list, {INBOUND: list(acked)})
    consumer._acked_index = defaultdict(set, {INBOUND: set(acked)})
    consumer._gap = defaultdict(IntervalTree)
    consumer._committed_offset = defaultdict(lambda: None, {INBOUND: committed})
    consumer._first_read = {} if first_read is None else {INBOUND: first_read}
    consumer.holds = {}
    consumer.clock = lambda: 0.0
    return consumer


@pytest.mark.parametrize("committed", [None, 0])
def test_faust_alone_commits_past_a_dropped_first_record_and_the_router_does_not(
    committed: int | None,
) -> None:
    """Offset 0 was read and dropped, 1 and 2 were handled: faust commits 3, losing 0."""
    plain = _consumer(aiokafka_driver.Consumer, 0, committed, [1, 2])
    assert plain._new_offset(INBOUND) == 3
    guarded = _consumer(_Consumer, 0, committed, [1, 2])
    assert guarded._new_offset(INBOUND) is None
    guarded._acked[INBOUND].append(0)  # read again (after a restart) and handled
    guarded._acked_index[INBOUND].add(0)
    assert guarded._new_offset(INBOUND) == 3


def test_faust_alone_lets_a_commit_start_one_record_late() -> None:
    plain = _consumer(aiokafka_driver.Consumer, 40, 40, [41, 42])
    assert plain._new_offset(INBOUND) == 43
    assert _consumer(_Consumer, 40, 40, [41, 42])._new_offset(INBOUND) is None


def test_the_router_commits_what_was_handled_in_order() -> None:
    assert _consumer(_Consumer, 40, 40, [40, 41, 42, 44])._new_offset(INBOUND) == 43


class _Seeking(_Consumer):
    """The consumer's seek and assignment, without a broker."""

    def __init__(self, assigned: set[TP]) -> None:  # no super(): built by _consumer()
        self.sought: list[tuple[TP, int]] = []
        self._assigned = assigned

    def assignment(self) -> set[TP]:
        return self._assigned

    async def seek(self, partition: TP, offset: int) -> None:
        self.sought.append((partition, offset))


def _held(first_read: int, committed: int, acked: list[int], now: list[float]) -> Any:
    consumer = _consumer(_Seeking, first_read, committed, acked)
    _Seeking.__init__(consumer, {INBOUND})
    consumer.clock = lambda: now[0]
    return consumer


def test_a_partition_held_back_long_enough_is_read_again_from_the_held_record() -> None:
    now = [100.0]
    consumer = _held(40, 40, [41, 42], now)
    assert consumer._new_offset(INBOUND) is None  # 40 read, 41 and 42 handled: held at 40
    now[0] = 104.0
    assert asyncio.run(consumer.read_held_again(after_s=5)) == []  # not long enough yet
    consumer._new_offset(INBOUND)  # still held at 40: the clock keeps running from 100
    now[0] = 105.0
    assert asyncio.run(consumer.read_held_again(after_s=5)) == [(INBOUND, 40)]
    assert consumer.sought == [(INBOUND, 40)]
    assert asyncio.run(consumer.read_held_again(after_s=5)) == []  # once per hold


def test_a_hold_released_or_revoked_is_not_read_again() -> None:
    now = [0.0]
    released = _held(40, 40, [41], now)
    released._new_offset(INBOUND)
    released._acked[INBOUND].append(40)  # the record came after all
    released._acked_index[INBOUND].add(40)
    assert released._new_offset(INBOUND) == 42
    revoked = _held(40, 40, [41], now)
    revoked._new_offset(INBOUND)
    revoked._assigned = set()  # a rebalance gave the partition to another worker
    now[0] = 60.0
    assert asyncio.run(released.read_held_again(after_s=5)) == []
    assert asyncio.run(revoked.read_held_again(after_s=5)) == []
    assert revoked.sought == [] and revoked.holds == {}


class _App:
    class topics:  # faust's attribute name
        @staticmethod
        def acks_enabled_for(_topic: str) -> bool:
            return True


class _Message:
    __slots__ = ("__weakref__", "acked", "offset", "topic", "tp")

    def __init__(self, offset: int) -> None:
        self.tp, self.topic, self.offset, self.acked = INBOUND, INBOUND.topic, offset, False


def test_only_acks_of_records_the_agent_handled_count() -> None:
    """faust's stream acks a record it skips (read before a rebalance, or while the flow is
    stopped) without handing it to the agent: that ack must not let a commit pass it."""
    consumer = _consumer(_Consumer, 40, 40, [])
    consumer.app = _App()
    consumer._unacked_messages = set()
    consumer._n_acked = 0
    consumer._waiting_for_ack = None
    consumer._handled = weakref.WeakSet()
    skipped = _Message(40)
    assert not consumer.ack(skipped)
    assert skipped.acked  # faust waits for nothing more of it
    assert consumer._new_offset(INBOUND) is None
    handled = _Message(40)  # read again, and this time handled
    consumer.note_handled(handled)
    assert consumer.ack(handled)
    assert consumer._new_offset(INBOUND) == 41
