"""The consume loop of both workers: each record handled into the commit window, acked when
the window commits (``streams.runtime.window``), one record at a time (agent concurrency 1,
faust-streaming #606).

Each record is marked in flight while it is handled (``streams.runtime.quarantine``): one the
worker died on ``router_crash_limit`` times in a row is dead-lettered unhandled instead, so
that the records after it are handled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import faust

from bus import services
from streams.routing.outputs import InMessage, Output
from streams.runtime.faust_fixes import unacked_events
from streams.runtime.quarantine import CrashMarks
from streams.runtime.window import Window
from streams.settings import WorkerSettings

log = logging.getLogger("ungebus.router")

Handler = Callable[[InMessage], list[Output]]


class Agent:
    """Reads ``source`` into ``window`` through ``handle``; ``role`` names the worker."""

    def __init__(
        self, app: faust.App, settings: WorkerSettings, window: Window, handle: Handler
    ) -> None:
        self.app = app
        self.role = app.conf.id.rsplit("-", 1)[-1]  # router or tracker
        self.window = window
        self.handle = handle
        self.crash_limit = settings.router_crash_limit
        self.marks = CrashMarks(settings.var_dir / services.CRASH_MARKS_DIR / app.conf.id)

    def install(self, app: faust.App, source: Any, name: str) -> None:
        """Register the agent (concurrency 1) and the window's background commits."""
        app.agent(source, name=name, concurrency=1)(self.run)
        app.task(self.window.keep_committing)

    async def run(self, stream: Any) -> None:
        window = self.window
        consumer: Any = self.app.consumer  # faust_fixes._Consumer: it counts acks of these only
        note_handled = consumer.note_handled
        async for manual, event in unacked_events(stream):
            message = in_message(event.message)
            mark, offset = self.marks.of(message.topic, message.partition), message.offset
            async with window.lock:
                crashes = mark.start(offset)
                if crashes >= self.crash_limit:
                    outputs = self.set_aside(message, crashes)
                else:
                    outputs = self.handle(message)
                note_handled(event.message)
                window.add(outputs, manual, event, message)
                mark.finish(offset)
                if window.full:
                    await window.close()  # commits in the background

    def set_aside(self, message: InMessage, crashes: int) -> list[Output]:
        log.error(
            "The %s died %d times in a row on %s-%d@%d; dead-lettering it unhandled",
            self.role, crashes, message.topic, message.partition, message.offset,
        )  # fmt: skip
        reason = (
            f"the {self.role} process died {crashes} times in a row while handling this record "
            f"(UNGEBUS_ROUTER_CRASH_LIMIT={self.crash_limit}): it is set aside unhandled, so "
            "that the records after it are handled"
        )
        return [self.window.dead_letters.of_record(message, reason, f"crashed_{self.role}")]


def in_message(message: Any) -> InMessage:
    """A consumed faust message as the pure core takes it."""
    return InMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=_headers(message.headers),
        timestamp=message.timestamp,
    )


def _headers(raw: Any) -> list[tuple[str, bytes]]:
    if not raw:
        return []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(str(k), bytes(v) if v is not None else b"") for k, v in items]
