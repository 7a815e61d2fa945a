"""The faust workers' Kafka transport (router, tracker): faust's aiokafka driver, with fixes.

- the producer is idempotent with acks=all always (faust does that only in transactions);
- after a rebalance, a partition the group never committed is read from its beginning;
- the broker waits a little to fill a fetch (settings), not answer with every record alone;
- a partition is never committed past a record that was read and not acknowledged
  (``streams.runtime.commit_guard``);
- the worker is a static member of its group: a restart takes its predecessor's place at once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from faust.transport.drivers import aiokafka as aiokafka_driver

from bus.settings import Settings
from streams.runtime.commit_guard import commit_head, may_commit

log = logging.getLogger("ungebus.router")


class _IdempotentProducer(aiokafka_driver.Producer):
    """faust enables idempotence only inside transactions; the bus wants it always."""

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
        settings: Settings = self.app.settings  # type: ignore[attr-defined]  # a BusApp
        max_wait_ms: int = self.app.fetch_max_wait_ms  # type: ignore[attr-defined]
        # aiokafka reads these when it starts, to make its fetcher; faust offers no setting.
        for name in ("_fetch_min_bytes", "_fetch_max_wait_ms"):
            if not hasattr(consumer, name):  # never set an attribute nobody reads
                raise RuntimeError(f"this aiokafka has no AIOKafkaConsumer.{name}")
        consumer._fetch_min_bytes = settings.router_fetch_min_bytes
        consumer._fetch_max_wait_ms = max_wait_ms
        # Static membership (``Settings.consumer_static_membership``): a restarted worker takes
        # its predecessor's place in the group at once, also after SIGKILL or os._exit, where
        # a dynamic member waits for the old one's session to expire. aiokafka reads it in
        # start(), to make its group coordinator; faust offers no setting.
        if not hasattr(consumer, "_group_instance_id"):
            raise RuntimeError("this aiokafka has no AIOKafkaConsumer._group_instance_id")
        consumer._group_instance_id = self.app.group_instance_id  # type: ignore[attr-defined]
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


class _Consumer(aiokafka_driver.Consumer):
    """faust's consumer, never committing past a record read and not acknowledged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first_read: dict[Any, int] = {}  # per partition, since the last seek
        self._held_at: dict[Any, int] = {}  # partitions whose commit waits, and where

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
                if head is not None and self._held_at.get(tp) != head:
                    self._held_at[tp] = head
                    log.warning(
                        "Not committing %s-%d past offset %d: offsets %d to %d were read but "
                        "not acknowledged (yet); if they never are, the watchdog restarts the "
                        "router and they are read again",
                        tp.topic, tp.partition, head, head, lowest - 1,
                    )  # fmt: skip
                return None
        return super()._new_offset(tp)


class Transport(aiokafka_driver.Transport):
    Consumer = _Consumer
    Producer = _IdempotentProducer
