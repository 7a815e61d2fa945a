"""Every place the workers reach past faust's and aiokafka's public interface, and why.

Written for faust-streaming 0.15.3 and aiokafka 0.14.0: the overrides below replace private
methods and set private attributes of those versions, so the module refuses to load on any
other (:func:`check_versions`); after an upgrade, read each fix against the new source, run
the tests that show the bugs (``tests/streams/runtime/test_commit_guard.py``,
``tests/streams/runtime/test_router_dropped_record.py``, ``test_router_startup.py``,
``test_router_kill.py``), then change :data:`WRITTEN_FOR`.

The fixes (DESIGN.md, "known traps", has the background):

- :class:`BusApp`: the app's Kafka transport is :class:`Transport`, and each worker's fetch
  and group membership settings reach the consumer;
- :class:`SubjectTable`: a table partitions its keys as every producer of the bus does;
- :class:`Transport`: an idempotent producer; a never-committed partition read from its
  beginning after a rebalance; fetches that wait to fill; static group membership; no commit
  past a record read and not acknowledged (the rule: ``streams.runtime.commit_guard``);
- :class:`TableChangelog`: table changes written to ``table.data`` and their changelog
  records produced by the commit window, not by faust's producer;
- :func:`unacked_events`: records read with manual acks, acked only when their window commits;
- :func:`quiet_worker`: a worker without faust's start-up spinner.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from faust.transport.drivers import aiokafka as aiokafka_driver

from streams.routing.outputs import Output
from streams.runtime.commit_guard import commit_head, may_commit

log = logging.getLogger("ungebus.router")

WRITTEN_FOR = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}


class UnsupportedVersion(RuntimeError):
    """faust-streaming or aiokafka is not the version these fixes were written for."""


def installed_version(distribution: str) -> str:
    return metadata.version(distribution)


def check_versions(version_of: Callable[[str], str] | None = None) -> None:
    """Refuse to run on versions the fixes were not written for (:class:`UnsupportedVersion`)."""
    lookup = version_of or installed_version
    wrong = {name: lookup(name) for name in WRITTEN_FOR}
    wrong = {name: found for name, found in wrong.items() if found != WRITTEN_FOR[name]}
    if wrong:
        found = ", ".join(f"{name} {version}" for name, version in wrong.items())
        written = ", ".join(f"{name} {version}" for name, version in WRITTEN_FOR.items())
        raise UnsupportedVersion(
            f"streams.runtime.faust_fixes was written for {written}, but {found} is installed: "
            "its fixes override private faust and aiokafka internals of those versions. "
            "Install the pinned versions (pyproject.toml), or check every fix in "
            "streams/runtime/faust_fixes.py against the new versions first."
        )


check_versions()


# -- the app and its tables -------------------------------------------------------------------
@dataclass(frozen=True)
class ConsumerTuning:
    """What the worker's consumer needs that faust offers no setting for."""

    fetch_min_bytes: int
    fetch_max_wait_ms: int  # the router's short (latency), the tracker's long (idle load)
    group_instance_id: str | None  # its stable name in its consumer group (static membership)


class BusApp(faust.App):
    """faust's app, its Kafka transport :class:`Transport` (faust offers no setting for that)."""

    consumer_tuning: ConsumerTuning  # set by the app factory, read by the consumer thread

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return Transport(self.conf.broker_producer, self)


class SubjectTable(faust.Table):
    """A table keyed by subject pseudonym, partitioned like the topics it is fed from.

    faust hashes a key its own way; the partition here is the Java client's murmur2 of the
    key, the same every producer of the bus uses (``partitioner=murmur2_random``), so a
    person's table entry sits in the partition of their events, also when written from a
    timer outside any event.
    """

    def partition_for_key(self, key: Any) -> int:
        return int((murmur2(key) & 0x7FFFFFFF) % self.partitions)


class TableChangelog(MutableMapping[bytes, bytes]):
    """A faust table's data, and where its changes are recorded, for ``streams.runtime.state``.

    faust writes every table change to the changelog through its own Python producer, about
    0.3 ms a record, one record per routed event, and at once, before the window's outputs
    are on Kafka. The state store instead writes a committed change to ``table.data``
    (faust's store, which bypasses faust's changelog) and produces :meth:`record` through the
    window's writer. faust restores the table from the same topic, in the same raw format.
    ``table.data`` is read at each access: faust makes it when the table is first used.
    """

    def __init__(self, table: Any) -> None:  # a faust Table
        self._table = table

    def record(self, key: bytes, value: bytes | None) -> Output:
        topic = self._table.changelog_topic.get_topic_name()
        return Output(topic, key, value, [], self._table.partition_for_key(key))

    def __getitem__(self, key: bytes) -> bytes:
        value: bytes = self._table.data[key]
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._table.data[key] = value

    def __delitem__(self, key: bytes) -> None:
        del self._table.data[key]

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self._table.data.keys()))

    def __len__(self) -> int:
        return len(self._table.data)


# -- reading and acking -----------------------------------------------------------------------
async def unacked_events(stream: Any) -> AsyncIterator[tuple[Any, Any]]:
    """``(manual, event)`` for every record of ``stream``; ack with ``manual.ack(event)``.

    faust acks a record when the agent moves on to the next, even after the agent failed on
    it (``Stream.__aiter__`` acks in ``finally``): read with manual acks and ack only what
    Kafka has every output of. ``stream.take()`` is not used: under load it stopped
    delivering records after a restart.
    """
    manual = stream.noack()
    async for event in manual.events():
        yield manual, event


def quiet_worker(app: faust.App, loglevel: str) -> Any:
    """A faust worker for ``app``, without its start-up spinner.

    The spinner sets the root logger to DEBUG so that it can spin on every log record: every
    aiokafka debug line then builds a LogRecord, about 8% of the router's time.
    """
    from faust.worker import Worker

    worker = Worker(app, loglevel=loglevel, quiet=True)
    worker.spinner = None
    return worker


# -- the Kafka transport ----------------------------------------------------------------------
class _IdempotentProducer(aiokafka_driver.Producer):
    """faust enables idempotence only inside transactions; the bus wants it always, with
    acks=all (DESIGN.md: aiokafka's producer is not idempotent by default)."""

    def _settings_extra(self) -> dict[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class _ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """After a rebalance, a partition the group never committed is read from its beginning.

    faust discards the records it had buffered when a rebalance (and table recovery) begins,
    then seeks every partition back to its committed offset. aiokafka seeks only where an
    offset was committed (and above 0); elsewhere the position stays past the discarded
    records, which were then never processed: an event published to a new partition during
    the router's start-up was lost. The group's ``auto.offset.reset`` is earliest, so the
    beginning is where such a partition's first read starts anyway.
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        """faust asks the broker to answer a fetch as soon as it has one byte; with events
        trickling in, every answer then holds a record or two, and fetching costs more than
        routing. Here the broker waits for more: the router's a few milliseconds, the tracker's a
        second (``UNGEBUS_ROUTER_FETCH_*``, ``UNGEBUS_TRACKER_FETCH_MAX_WAIT_MS``)."""
        consumer = super()._create_worker_consumer(transport)
        tuning: ConsumerTuning = self.app.consumer_tuning  # type: ignore[attr-defined]  # BusApp
        # aiokafka reads these when it starts, to make its fetcher; faust offers no setting.
        for name in ("_fetch_min_bytes", "_fetch_max_wait_ms"):
            if not hasattr(consumer, name):  # never set an attribute nobody reads
                raise RuntimeError(f"this aiokafka has no AIOKafkaConsumer.{name}")
        consumer._fetch_min_bytes = tuning.fetch_min_bytes
        consumer._fetch_max_wait_ms = tuning.fetch_max_wait_ms
        # Static membership (``Settings.consumer_static_membership``): a restarted worker takes
        # its predecessor's place in the group at once, also after SIGKILL or os._exit, where
        # a dynamic member waits for the old one's session to expire. aiokafka reads it in
        # start(), to make its group coordinator; faust offers no setting.
        if not hasattr(consumer, "_group_instance_id"):
            raise RuntimeError("this aiokafka has no AIOKafkaConsumer._group_instance_id")
        consumer._group_instance_id = tuning.group_instance_id
        return consumer

    async def seek_to_committed(self) -> Mapping[Any, int]:
        return await self.call_thread(self._seek_to_committed_or_beginning)

    async def _seek_to_committed_or_beginning(self) -> Mapping[Any, int]:
        consumer = self._ensure_consumer()
        committed: Mapping[Any, int] = await consumer.seek_to_committed()
        never = [
            tp
            for tp, offset in committed.items()
            if not offset and not tp.topic.endswith("-changelog")
        ]
        if never:
            await consumer.seek_to_beginning(*never)
        return committed


@dataclass
class Hold:
    """A partition whose commit waits at ``head`` (a record read and not acknowledged) since
    ``since`` (monotonic seconds)."""

    head: int
    since: float


class _Consumer(aiokafka_driver.Consumer):
    """faust's consumer, never committing past a record read and not acknowledged, and
    reading such a record again.

    faust 0.15.3 can commit past one: it commits the first run of consecutive acknowledged
    offsets, checks that the run starts where the last commit ended only above offset 0, and
    drops a record it re-read below the offset it believes it read last
    (``streams.runtime.commit_guard``). A partition held back that way is read again from the
    held record (:meth:`read_held_again`), in the process, without a restart.

    It also counts only the acks of records the agent handled (:meth:`note_handled`, then
    acked when their window commits): faust's stream acks a record it skips without handing it
    to the agent (one read before the group's last rebalance, or while the flow is stopped for
    one), and such an ack could let a commit pass a record nobody handled.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first_read: dict[Any, int] = {}  # per partition, since the last seek
        self.holds: dict[Any, Hold] = {}  # partitions whose commit waits, and where
        self.clock: Callable[[], float] = time.monotonic
        self._handled: weakref.WeakSet[Any] = weakref.WeakSet()

    def note_handled(self, message: Any) -> None:
        """The agent handled ``message``: its ack, when its window commits, counts."""
        self._handled.add(message)

    def ack(self, message: Any) -> bool:
        if message not in self._handled:  # skipped by faust's stream, never handled
            message.acked = True  # faust's bookkeeping: nothing left to wait for
            self._unacked_messages.discard(message)
            return False
        self._handled.discard(message)
        acked: bool = super().ack(message)
        return acked

    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        first_read = self._first_read
        async for tp, message in super().getmany(timeout):
            if tp not in first_read:
                first_read[tp] = message.offset
            yield tp, message

    async def perform_seek(self) -> None:
        self._first_read.clear()
        await super().perform_seek()

    async def seek(self, partition: Any, offset: int) -> None:
        self._first_read.pop(partition, None)
        await super().seek(partition, offset)

    def _new_offset(self, tp: Any) -> int | None:
        acked = self._acked[tp]
        if acked:
            head = commit_head(self._first_read.get(tp), self._committed_offset[tp])
            lowest = min(acked)
            gaps = self._gap[tp]  # offsets that do not exist, counted as acknowledged
            if gaps:
                lowest = min(lowest, min(interval.begin for interval in gaps))
            if not may_commit(head, lowest):
                if head is not None:
                    self._hold(tp, head, lowest)
                return None
        self.holds.pop(tp, None)
        return super()._new_offset(tp)

    def _hold(self, tp: Any, head: int, lowest_acked: int) -> None:
        if tp in self.holds and self.holds[tp].head == head:
            return
        self.holds[tp] = Hold(head, self.clock())
        log.warning(
            "Not committing %s-%d past offset %d: offsets %d to %d were read but not "
            "acknowledged (yet); if they are not soon, they are read again",
            tp.topic, tp.partition, head, head, lowest_acked - 1,
        )  # fmt: skip

    async def read_held_again(self, after_s: float) -> list[tuple[Any, int]]:
        """Seek every partition held back for ``after_s`` or longer to its held record.

        Records of one partition are handled in order, so one acknowledged after a record that
        is not means faust dropped that record; the records after it are read again too, and
        handling them again changes nothing (the router knows the events it has seen, task
        ids are deterministic, the inbox stores a task once). Returns what it sought.
        """
        assigned, now, sought = self.assignment(), self.clock(), []
        for tp, hold in list(self.holds.items()):
            if tp not in assigned:
                del self.holds[tp]
            elif now - hold.since >= after_s:
                del self.holds[tp]
                log.warning(
                    "Reading %s-%d again from offset %d: that record was read %.0f s ago and "
                    "never handled, while later ones were",
                    tp.topic, tp.partition, hold.head, now - hold.since,
                )  # fmt: skip
                await self.seek(tp, hold.head)
                sought.append((tp, hold.head))
        return sought


class Transport(aiokafka_driver.Transport):
    """faust's aiokafka driver with the consumer and producer above."""

    Consumer = _Consumer
    Producer = _IdempotentProducer
