"""Is the router making progress? Consumer lag read from Kafka, and a watchdog on it.

faust-streaming 0.15.3 sometimes stops fetching after an unclean restart with a backlog: the
worker is up and idle while records wait (README, known issues). Nothing inside faust notices,
so the router watches itself from the outside, the way an operator would: its consumer group's
committed offsets against the end of each partition (the ends read with Kafka's admin API, the
offsets through a handle of the group, ``bus.confluent_fixes``). Records
waiting on a partition whose committed offset has not moved for ``stall_after_s`` means
stalled; the worker then exits (a supervisor starts it again, which resumes from the committed
offsets without loss).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from bus.confluent_fixes import CommittedOffsets

Partition = tuple[str, int]


@dataclass(frozen=True)
class Offsets:
    """Per partition: the group's committed offset and the partition's end offset."""

    committed: Mapping[Partition, int]
    end: Mapping[Partition, int]

    def lag(self) -> dict[Partition, int]:
        return {tp: max(0, end - self.committed.get(tp, 0)) for tp, end in self.end.items()}

    def of(self, partitions: Iterable[Partition]) -> Offsets:
        """Only ``partitions`` (a worker's own, of its group's)."""
        mine = set(partitions)
        return Offsets(
            {tp: o for tp, o in self.committed.items() if tp in mine},
            {tp: o for tp, o in self.end.items() if tp in mine},
        )


@dataclass
class Watchdog:
    """Decides "stalled" from successive readings; pure, the clock comes in with each one.

    Per partition: one partition left behind while the others move is stalled too (a record
    faust read and dropped holds its partition's commit back, ``streams.runtime.commit_guard``).
    """

    stall_after_s: float
    _last: dict[Partition, int | None] = field(default_factory=dict)
    _progress_at: dict[Partition, float] = field(default_factory=dict)

    def observe(self, offsets: Offsets, now: float) -> bool:
        """True when a partition's records have waited and its committed offset has not moved
        for ``stall_after_s``."""
        stalled = False
        lag = offsets.lag()
        for gone in set(self._progress_at) - set(lag):  # no longer the worker's partition
            del self._progress_at[gone], self._last[gone]
        for tp, waiting in lag.items():
            committed = offsets.committed.get(tp)
            if not waiting or tp not in self._progress_at or self._last[tp] != committed:
                self._progress_at[tp] = now
            self._last[tp] = committed
            stalled = stalled or now - self._progress_at[tp] > self.stall_after_s
        return stalled

    def reset(self) -> None:
        """Not expected to progress now (rebalancing, recovering tables): start over."""
        self._last.clear()
        self._progress_at.clear()


@dataclass
class LagProbe:
    """Reads a consumer group's offsets on a set of topics (blocking; run it in a thread)."""

    config: Mapping[str, Any]
    group: str
    topics: Iterable[str]
    timeout_s: float = 10.0
    _admin: AdminClient = field(init=False)
    _committed: CommittedOffsets = field(init=False)

    def __post_init__(self) -> None:
        self._admin = AdminClient(dict(self.config))
        self._committed = CommittedOffsets(self.config, self.group)
        self.topics = tuple(self.topics)

    def read(self) -> Offsets:
        metadata = self._admin.list_topics(timeout=self.timeout_s).topics
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            if topic in metadata
            for p in metadata[topic].partitions
        ]
        ends = self._admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in partitions}, request_timeout=self.timeout_s
        )
        end = {(tp.topic, tp.partition): f.result().offset for tp, f in ends.items()}
        committed = self._committed.read(end, self.timeout_s)
        return Offsets(committed, end)
