"""The workers' liveness timer: read the consumer group's offsets, feed the watchdog
(``streams.runtime.liveness``), export the consumer lag, and exit when stalled."""

from __future__ import annotations

import asyncio
import logging
import time

import faust
from confluent_kafka import KafkaException

from bus import telemetry
from streams.runtime.exits import EXIT_STALLED, exit_now
from streams.runtime.liveness import LagProbe, Offsets, Watchdog
from streams.settings import WorkerSettings

log = logging.getLogger("ungebus.router")


class LivenessTimer:
    """Exit when records wait and nothing moves; the supervisor starts the worker again."""

    def __init__(self, app: faust.App, settings: WorkerSettings, topics: list[str]) -> None:
        self.app = app
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

    async def check(self) -> None:
        try:
            offsets = await asyncio.get_running_loop().run_in_executor(None, self.probe.read)
        except KafkaException as exc:  # Kafka away: the writer's timeout deals with that
            log.warning("Could not read the router's consumer offsets: %s", exc)
            return
        self.latest = offsets
        now = time.monotonic()
        if self.app.rebalancing or self.app.in_recovery:
            self.watchdog.reset()
        elif self.watchdog.observe(offsets, now):
            waiting = sum(offsets.lag().values())
            log.critical(
                "A partition of the router has not moved for %.0f s with records waiting (%d in "
                "all); exiting so that its supervisor starts it again (it resumes from the "
                "committed offsets)",
                self.stall_after_s,
                waiting,
            )
            exit_now(EXIT_STALLED)
