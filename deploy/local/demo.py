"""``ungebus demo``: the bus on this machine, fed a sample day, summarised, stopped.

The same start-up as ``ungebus run``, without a terminal to watch: it feeds synthetic partner
traffic (valid and invalid, over HTTP and the file drop), waits until every accepted event has a
routing decision, records consent for some held events and waits until they are released,
prints the summary, has a demo caseworker take over one task and prints that event's trace,
and stops what it started. Exit code 0 only if all of that happened in time.
"""

from __future__ import annotations

import random
import threading

import click

from bus.processes import stop_on_signals
from deploy.local.follow import take_over_and_trace
from deploy.local.play import Interrupted, Waits, play_sample_day, today
from deploy.local.stack import READY_TIMEOUT_S, Stack, StackError, StackSettings, child_env
from deploy.local.traffic import DemoPartners, Feeder, TrafficError, sample_day
from deploy.local.watch import TopicWatcher, WatchError


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
    settings = StackSettings()
    seed = random.randrange(1_000_000) if seed is None else seed
    stop = threading.Event()
    stop_on_signals(stop, click.echo)
    stack = Stack(settings, click.echo)
    failure: str | None = None
    watcher: TopicWatcher | None = None
    feeder: Feeder | None = None
    try:
        stack.up(stop, READY_TIMEOUT_S)
        if stop.is_set():
            raise Interrupted("stopped while starting")
        waits = Waits(stop, stack.first_dead)
        watcher = TopicWatcher(settings)
        watcher.start()
        feeder = Feeder(settings, DemoPartners.load(settings), watcher)
        click.echo(f"Sample day: {count} synthetic partner events, seed {seed}")
        day = sample_day(seed, count, today())
        play_sample_day(day, feeder, watcher, waits, click.echo, timeout_s=timeout_s)
        _wait_for_escalations(watcher, waits, settings)
        click.echo(watcher.read(lambda t: t.render(follow_in=settings.inbox_kommunekode)))
        example = watcher.read(lambda t: t.examples.get(settings.inbox_kommunekode))
        if example is not None:
            take_over_and_trace(settings, example, waits, click.echo)
    except (StackError, TrafficError, WatchError) as exc:
        failure = str(exc)
    finally:
        if feeder is not None:
            feeder.close()
        if watcher is not None:
            watcher.close()
        stack.down()
    if failure:
        raise click.ClickException(failure)
    click.echo(
        f"Done; everything it started is stopped (logs: {settings.log_dir}). To keep the bus "
        "running and open the caseworker inbox: `make run`."
    )


def _wait_for_escalations(watcher: TopicWatcher, waits: Waits, settings: StackSettings) -> None:
    """Give the handover tracker one round to escalate the tasks that are overdue already."""
    if not watcher.read(lambda t: sum(t.routes.values())):
        return
    interval = float(child_env(settings)["UNGEBUS_TRACKER_CHECK_INTERVAL_S"])
    waits.at_most(lambda: watcher.read(lambda t: bool(t.escalated_tasks)), min(interval, 30) + 5)
