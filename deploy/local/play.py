"""Playing a sample day through a running bus: feed it, wait until it is decided, release holds.

Shared by ``ungebus run`` (in the background, paced) and ``ungebus demo`` (at once).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bus.waiting import within
from deploy.local.summary import Tally
from deploy.local.traffic import Feeder, SampleDay, TrafficError
from deploy.local.watch import TopicWatcher


class Interrupted(TrafficError):
    """Ctrl-C (or SIGTERM) while waiting."""


@dataclass(frozen=True)
class Waits:
    """Wait-until loops that give up on Ctrl-C, a dead component, or their deadline."""

    stop: threading.Event
    problem: Callable[[], str | None]  # a dead component's report, if any

    def until(self, condition: Callable[[], bool], timeout_s: float, failing: str) -> None:
        """Wait for ``condition``; :class:`TrafficError` saying ``failing`` after the deadline."""
        if not self.at_most(condition, timeout_s):
            raise TrafficError(f"{failing} within {timeout_s:.0f} s")

    def at_most(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Wait for ``condition``, at most ``timeout_s``; whether it came true."""
        return within(condition, timeout_s, check=self._give_up, sleep=self.stop.wait)

    def _give_up(self) -> None:
        if (report := self.problem()) is not None:
            raise TrafficError(report)
        if self.stop.is_set():
            raise Interrupted("stopped before the traffic was processed")


def play_sample_day(
    day: SampleDay,
    feeder: Feeder,
    watcher: TopicWatcher,
    waits: Waits,
    echo: Callable[[str], None],
    *,
    pace_s: float = 0.0,
    timeout_s: float = 60.0,
) -> None:
    """Feed ``day``, wait until it is decided, then release some holds by consent."""
    placed = feeder.drop_files(day.files, f"sample-day-{day.seed}-{time.strftime('%H%M%S')}")
    rows = sum(len(r) for r in day.files.values())
    echo(f"Dropped {rows} partner rows as {len(placed)} exports in {feeder.settings.drop_dir}")
    waits.until(
        lambda: not any(p.exists() for p in placed), timeout_s, "the file drop did not read"
    )
    feeder.count_file_rejects(placed)
    accepted = feeder.send_http(day.http, pace_s, waits.stop)
    echo(f"Posted {len(day.http)} events to the partner API: {accepted} accepted (202)")
    ends = watcher.inbound_ends()
    waits.until(
        lambda: watcher.has_read(ends) and not watcher.read(Tally.undecided),
        timeout_s,
        "the router did not decide on every accepted event",
    )
    held = watcher.read(lambda t: dict(t.held()))
    releasing = feeder.release_holds(held, day.subjects)
    echo(
        f"{len(held)} events wait for consent; a municipality records consent for "
        f"{len(releasing)} of them"
    )
    waits.until(
        lambda: watcher.read(lambda t: releasing <= t.released),
        timeout_s,
        "the router did not release the events whose consent arrived",
    )


def today() -> dt.date:
    return dt.datetime.now().date()
