"""The handover tracker worker: open tasks per person, closed by take-overs, and the timer
that escalates tasks nobody took over in time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import faust

from streams.handover.store import HandoverStore
from streams.handover.tracker import Tracker
from streams.routing.outputs import InMessage, Output
from streams.runtime.agent import Agent
from streams.runtime.observe import RoutingTelemetry, Traced
from streams.runtime.state import StagedTables
from streams.runtime.window import Window
from streams.runtime.writer import OutputWriter
from streams.settings import TrackerSettings


class TrackerRole:
    """The tracker's agent and timer over one commit window and its state store."""

    def __init__(
        self,
        app: faust.App,
        settings: TrackerSettings,
        tables: StagedTables,
        fail: Callable[[BaseException], None],
        traced: Traced,
    ) -> None:
        topics = settings.topics
        self.traced = traced
        self.tracker = Tracker(
            topics,
            unknown_ack_grace=dt.timedelta(seconds=settings.tracker_unknown_ack_grace_s),
            observer=RoutingTelemetry("tracker"),
            limits=settings.record_limits,
        )
        self.tables = tables
        self.store = HandoverStore(tables)
        self.window = Window(OutputWriter(settings), tables, fail,
                             dead_letters=self.tracker.dead_letters,
                             max_records=settings.router_batch_size,
                             max_wait_s=settings.router_commit_interval_s)  # fmt: skip
        self.source = app.topic(
            *topics.all_tasks(),
            *topics.all_task_acks(),
            topics.erasures,  # keyed and partitioned like the rest: a person erased
            key_serializer="raw",
            value_serializer="raw",
        )
        Agent(app, settings, self.window, self.handle).install(app, self.source, "track")
        app.timer(settings.tracker_check_interval_s, name="escalate_overdue")(self.escalate_overdue)

    def handle(self, message: InMessage) -> list[Output]:
        return self.traced.process(message, self.track)

    def track(self, message: InMessage) -> list[Output]:
        return self.tracker.handle(message, self.store)

    async def escalate_overdue(self) -> None:
        window = self.window
        async with window.lock:
            pseudonyms = self.tables.keys("handovers")
            window.add(self.traced.sending(self.tracker.expire(self.store, pseudonyms)))
            await window.commit()

    @property
    def topics(self) -> list[Any]:
        return list(self.source.topics)
