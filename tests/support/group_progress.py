"""How long a consumer group's partitions stood still: its committed offsets sampled from a
thread (as admin), so a fault test can say how many seconds after a kill each partition with
records waiting moved on again (the fail-over time), without reading any process's log."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bus.confluent_fixes import CommittedOffsets

Offsets = dict[int, int]


@dataclass
class GroupProgress:
    admin_config: dict[str, Any]
    group: str
    topic: str
    partitions: int
    every_s: float = 0.25
    samples: list[tuple[float, Offsets]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> GroupProgress:
        self._thread = threading.Thread(target=self._run, name="group-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        wanted = [(self.topic, p) for p in range(self.partitions)]
        with CommittedOffsets(self.admin_config, self.group) as committed:
            while not self._stop.is_set():
                try:
                    answer = committed.read(wanted, timeout_s=5)
                except Exception:  # a broker fault is what the test is about: sample again
                    self._stop.wait(self.every_s)
                    continue
                offsets = {partition: offset for (_, partition), offset in answer.items()}
                self.samples.append((time.monotonic(), offsets))
                self._stop.wait(self.every_s)

    def standstill_after(self, moment: float, until: float) -> float:
        """The longest time after ``moment`` that a partition's committed offset stayed where
        it was at ``moment`` (up to ``until``: one that never moved by then stood still all
        that time). Meant for a group under steady load, where every partition has records
        waiting."""
        before = [offsets for t, offsets in self.samples if t <= moment]
        if not before:
            return 0.0
        longest = 0.0
        for partition, offset in before[-1].items():
            after = (
                t for t, o in self.samples if moment < t <= until and o.get(partition) != offset
            )
            longest = max(longest, next(after, until) - moment)
        return longest

    def _offset_at(self, moment: float, partition: int) -> int | None:
        return next((o.get(partition) for t, o in self.samples if t == moment), None)


def group_lag(
    admin_config: dict[str, Any], group: str, topics: list[str]
) -> dict[tuple[str, int], int]:
    """Per partition of ``topics`` with records beyond what ``group`` has committed (a
    partition it never committed counts from its start): how many; empty once caught up."""
    consumer = Consumer({**admin_config, "group.id": f"{group}.lag-probe"})
    try:
        metadata = consumer.list_topics(timeout=10).topics
        wanted = [(t, p) for t in topics for p in metadata[t].partitions]
        with CommittedOffsets(admin_config, group) as committed_offsets:
            committed = committed_offsets.read(wanted)
        lag = {}
        for topic, partition in wanted:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            behind = high - max(committed.get((topic, partition), 0), low)
            if behind:
                lag[(topic, partition)] = behind
        return lag
    finally:
        consumer.close()
