"""The workers' liveness timers: read the consumer group's offsets, feed the watchdog
(``streams.runtime.liveness``) with the worker's own partitions, export the consumer lag, and
exit when stalled; and read again a partition whose commit a dropped record holds back
(``streams.runtime.faust_fixes``)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from confluent_kafka import KafkaException

from bus import telemetry
from streams.runtime.exits import EXIT_STALLED, exit_now
from streams.runtime.liveness import LagProbe, Offsets, Watchdog
from streams.settings import WorkerSettings

log = logging.getLogger("ungebus.router")


class LivenessTimer:
    """Exit when records wait on the worker's own partitions and nothing moves; the
    supervisor starts the worker again. Another worker of the group stalled is that worker's
    business: its own watchdog restarts it."""

    def __init__(self, app: faust.App, settings: WorkerSettings, topics: list[str]) -> None:
        self.app = app
        self.role = app.conf.id.rsplit("-", 1)[-1]  # router or tracker
        self.read_again_after_s = settings.router_read_again_after_s
        self.stall_after_s = settings.router_stall_after_s
        self.probe = LagProbe(settings.kafka_config(), app.conf.id, topics)
        self.watchdog = Watchdog(settings.router_stall_after_s)
        self.latest: Offsets | None = None  # the last reading, for the consumer-lag gauge
        telemetry.consumer_lag_gauge(
            telemetry.meter("ungebus.router"),
            app.conf.id,
            lambda: self.latest.lag() if self.latest else {},
        )
        app.timer(settings.router_liveness_interval_s, name="watch_liveness")(self.check)
        app.timer(max(0.5, self.read_again_after_s / 2), name="read_held_again")(self.read_again)

    def _settled(self) -> bool:
        """Neither rebalancing nor recovering tables: the worker should be moving."""
        return not (self.app.rebalancing or self.app.in_recovery)

    def _own(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self.app.consumer.assignment()}

    async def read_again(self) -> None:
        if self._settled():
            consumer: Any = self.app.consumer  # faust_fixes._Consumer (BusApp's transport)
            await consumer.read_held_again(self.read_again_after_s)

    async def check(self) -> None:
        try:
            offsets = await asyncio.get_running_loop().run_in_executor(None, self.probe.read)
        except KafkaException as exc:  # Kafka away: the writer's timeout deals with that
            log.warning("Could not read the router's consumer offsets: %s", exc)
            return
        self.latest = offsets
        now = time.monotonic()
        if not self._settled():
            self.watchdog.reset()
            return
        own = offsets.of(self._own())
        if self.watchdog.observe(own, now):
            log.critical(
                "A partition of the %s has not moved for %.0f s with records waiting (%d on its "
                "partitions); exiting so that its supervisor starts it again (it resumes from "
                "the committed offsets)",
                self.role, self.stall_after_s, sum(own.lag().values()),
            )  # fmt: skip
            exit_now(EXIT_STALLED)
