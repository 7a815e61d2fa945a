"""The router's watchdog: stalled when a partition's records wait and its committed offset does
not move."""

from __future__ import annotations

from streams.runtime.liveness import Offsets, Watchdog

TP = ("inbound", 0)


def offsets(committed: int, end: int) -> Offsets:
    return Offsets({TP: committed}, {TP: end})


def test_records_waiting_and_nothing_moving_for_too_long_is_a_stall() -> None:
    watchdog = Watchdog(stall_after_s=30)
    assert not watchdog.observe(offsets(10, 50), now=0)
    assert not watchdog.observe(offsets(10, 50), now=30)
    assert watchdog.observe(offsets(10, 60), now=31)


def test_moving_offsets_are_progress_however_long_the_backlog() -> None:
    watchdog = Watchdog(stall_after_s=30)
    for step in range(10):
        assert not watchdog.observe(offsets(10 + step, 1000), now=step * 20)


def test_nothing_waiting_is_never_a_stall() -> None:
    watchdog = Watchdog(stall_after_s=30)
    for step in range(10):
        assert not watchdog.observe(offsets(50, 50), now=step * 20)


def test_a_partition_never_committed_counts_its_whole_log_as_waiting() -> None:
    assert Offsets({}, {TP: 7}).lag() == {TP: 7}


def test_reset_starts_the_clock_again() -> None:
    watchdog = Watchdog(stall_after_s=30)
    watchdog.observe(offsets(10, 50), now=0)
    watchdog.reset()  # e.g. a rebalance
    assert not watchdog.observe(offsets(10, 50), now=50)
    assert watchdog.observe(offsets(10, 50), now=90)


def test_one_partition_left_behind_while_others_move_is_a_stall() -> None:
    behind, moving = ("inbound", 0), ("inbound", 1)
    watchdog = Watchdog(stall_after_s=30)
    for step in range(4):
        reading = Offsets({behind: 10, moving: 10 + step}, {behind: 50, moving: 1000})
        assert watchdog.observe(reading, now=step * 10) == (step * 10 > 30)


def test_a_worker_watches_only_its_own_partitions_of_the_group() -> None:
    """Another worker's partition stuck is that worker's stall: its own watchdog restarts it."""
    mine, theirs = ("inbound", 0), ("inbound", 1)
    group = Offsets({mine: 50, theirs: 10}, {mine: 50, theirs: 60})
    assert group.of([mine]) == Offsets({mine: 50}, {mine: 50})
    watchdog = Watchdog(stall_after_s=30)
    for step in range(10):
        assert not watchdog.observe(group.of([mine]), now=step * 10)
    assert Watchdog(stall_after_s=30).observe(group, now=0) is False


def test_a_partition_given_back_and_assigned_again_starts_its_clock_again() -> None:
    watchdog = Watchdog(stall_after_s=30)
    watchdog.observe(offsets(10, 50), now=0)  # mine, records waiting
    watchdog.observe(Offsets({}, {}), now=20)  # moved to another worker by a rebalance
    assert not watchdog.observe(offsets(10, 50), now=40)  # back: waiting 0 s, not 40
    assert watchdog.observe(offsets(10, 50), now=71)
