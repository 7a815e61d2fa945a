"""``ungebus demo``: the bus on this machine, fed a sample day, summarised, stopped.

The same start-up as ``ungebus run``, without a terminal to watch: it feeds synthetic partner
traffic (valid and invalid, over HTTP and the file drop), waits until every accepted event has a
routing decision, records consent for some held events and waits until they are released,
prints the summary, has a demo caseworker take over one task and prints that event's trace,
and stops what it started. Exit code 0 only if all of that happened in time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import click

from deploy.local.follow import take_over_and_trace
from deploy.local.play import Waits, play_sample_day, today
from deploy.local.session import RunningBus, run_scenario
from deploy.local.stack import StackSettings, child_env
from deploy.local.traffic import DemoPartners, Feeder, sample_day
from deploy.local.watch import TopicWatcher


@click.command()
@click.option(
    "--count",
    default=80,
    show_default=True,
    type=click.IntRange(8, 5000),
    help="synthetic partner events in the sample day",
)
@click.option("--seed", type=int, help="for the synthetic data; default: a new one, printed")
@click.option(
    "--timeout",
    "timeout_s",
    default=60.0,
    show_default=True,
    help="seconds the traffic may take to be processed",
)
def demo(count: int, seed: int | None, timeout_s: float) -> None:
    """Start the bus, feed it a sample day, print what it did, and stop it (exit 0 if all went)."""
    seed = random.randrange(1_000_000) if seed is None else seed
    run_scenario(SampleDay(count, seed, timeout_s))


@dataclass
class SampleDay:
    """Play a sample day at once, summarise it, follow one event to its take-over."""

    count: int
    seed: int
    timeout_s: float
    stopped_while_starting: str | None = "stopped while starting"
    feeder: Feeder | None = None

    def play(self, bus: RunningBus) -> str | None:
        settings, watcher, waits = bus.settings, bus.watcher, bus.waits
        self.feeder = Feeder(settings, DemoPartners.load(settings), watcher)
        bus.echo(f"Sample day: {self.count} synthetic partner events, seed {self.seed}")
        day = sample_day(self.seed, self.count, today())
        play_sample_day(day, self.feeder, watcher, waits, bus.echo, timeout_s=self.timeout_s)
        _wait_for_escalations(watcher, waits, settings)
        bus.echo(watcher.read(lambda t: t.render(follow_in=settings.inbox_kommunekode)))
        example = watcher.read(lambda t: t.examples.get(settings.inbox_kommunekode))
        if example is not None:
            take_over_and_trace(settings, example, waits, bus.echo)
        return None

    def close(self) -> None:
        if self.feeder is not None:
            self.feeder.close()

    def done(self, settings: StackSettings) -> str:
        return (
            f"Done; everything it started is stopped (logs: {settings.log_dir}). To keep the "
            "bus running and open the caseworker inbox: `make run`."
        )


def _wait_for_escalations(watcher: TopicWatcher, waits: Waits, settings: StackSettings) -> None:
    """Give the handover tracker one round to escalate the tasks that are overdue already."""
    if not watcher.read(lambda t: sum(t.routes.values())):
        return
    interval = float(child_env(settings)["UNGEBUS_TRACKER_CHECK_INTERVAL_S"])
    waits.at_most(lambda: watcher.read(lambda t: bool(t.escalated_tasks)), min(interval, 30) + 5)
