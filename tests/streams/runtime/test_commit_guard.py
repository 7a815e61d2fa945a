"""The router never commits a partition past a record it read and did not acknowledge."""

from __future__ import annotations

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
    consumer._held_at = {}
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
