"""``ungebus run``: the whole bus on this machine, fed a sample day, until Ctrl-C.

It starts the local Kafka broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` points elsewhere), creates
the topics, starts every component as a supervised child process (logs in ``var/logs/``), feeds
a sample day of synthetic partner traffic and prints what the bus does with it every few
seconds. Ctrl-C stops everything it started; a component that dies stops the run (exit 1) with
the end of its log.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import click

from bus import services
from deploy.local.play import Interrupted, play_sample_day, today
from deploy.local.session import RunningBus, run_scenario
from deploy.local.stack import StackSettings
from deploy.local.traffic import DemoPartners, Feeder, TrafficError, sample_day
from schemas import KOMMUNEKODER

SUMMARY_EVERY_S = 5.0
PACE_S = 0.25  # between two partner requests of the sample day


@click.command()
@click.option(
    "--count",
    default=160,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="synthetic partner events in the sample day; 0 feeds none",
)
@click.option("--seed", type=int, help="for the synthetic data; default: a new one, printed")
def run(count: int, seed: int | None) -> None:
    """Run the bus on this machine, fed a sample day, until Ctrl-C."""
    run_scenario(UntilStopped(count, seed))


@dataclass
class UntilStopped:
    """Feed a paced sample day in the background; print the summary when it changes."""

    count: int
    seed: int | None
    stopped_while_starting: str | None = None  # Ctrl-C while starting: "Stopped.", exit 0
    feeding: threading.Thread | None = None

    def play(self, bus: RunningBus) -> str | None:
        bus.echo(where_to_look(bus.settings))
        if self.count:
            seed = random.randrange(1_000_000) if self.seed is None else self.seed
            self.feeding = threading.Thread(
                target=_feed, args=(bus, self.count, seed), name="sample-day", daemon=True
            )
            self.feeding.start()
        return _watch(bus)

    def close(self) -> None:
        if self.feeding is not None:
            self.feeding.join(30)

    def done(self, settings: StackSettings) -> str:
        return "Stopped."


def where_to_look(settings: StackSettings) -> str:
    code = settings.inbox_kommunekode
    municipality = f"{KOMMUNEKODER.get(code, 'kommunekode')} {code}"
    lines = [
        "",
        "ungebus is running. Press Ctrl-C to stop.",
        f"  caseworker inbox:  {settings.inbox_url}/ (for {municipality})",
    ]
    sign_in = settings.var_dir / services.INBOX_SIGN_IN_FILE
    if sign_in.exists():
        found = dict(
            line.split(": ", 1) for line in sign_in.read_text().splitlines() if ": " in line
        )
        lines.append(
            f"                     sign in as {found.get('staff id', '?')}, password "
            f"{found.get('password', '?')} (from {sign_in})"
        )
    lines += [
        f"  partner API docs:  {settings.api_url}/docs",
        f"  file drop:         {settings.drop_dir}/<partner>/<kind>/*.jsonl|*.csv",
        f"  logs:              {settings.log_dir}",
        "  one event's trace: .venv/bin/ungebus trace EVENT_ID  (an event id: the summary's "
        '"follow" line)',
        "  one person's audit: .venv/bin/ungebus audit CPR|PSEUDONYM  (from the audit store)",
    ]
    if (port := settings.component_metrics_port("streams")) is not None:
        lines.append(
            f"  metrics:           http://{settings.metrics_host}:{port}/metrics (router; "
            f"the others from {settings.metrics_port_base} up: see the README)"
        )
    lines.append("")
    return "\n".join(lines)


def _feed(bus: RunningBus, count: int, seed: int) -> None:
    """The sample day, paced; what goes wrong is said, and the bus runs on."""
    try:
        feeder = Feeder(bus.settings, DemoPartners.load(bus.settings), bus.watcher)
    except TrafficError as exc:
        bus.echo(f"No sample traffic: {exc}")
        return
    bus.echo(f"Feeding a sample day: {count} synthetic partner events (seed {seed})")
    try:
        day = sample_day(seed, count, today())
        play_sample_day(day, feeder, bus.watcher, bus.waits, bus.echo, pace_s=PACE_S)
        bus.echo("The sample day is processed.")
    except Interrupted:
        pass
    except TrafficError as exc:
        bus.echo(f"The sample traffic stopped: {exc}")
    finally:
        feeder.close()


def _watch(bus: RunningBus) -> str | None:
    """Print the summary when it changed, every few seconds, until Ctrl-C or a death."""
    follow_in = bus.settings.inbox_kommunekode
    shown, next_at = "", time.monotonic() + SUMMARY_EVERY_S
    while not bus.stop.wait(1.0):
        if (report := bus.stack.first_dead()) is not None:
            return report
        if time.monotonic() < next_at:
            continue
        next_at += SUMMARY_EVERY_S
        summary = bus.watcher.read(lambda t: t.render(follow_in=follow_in))
        if _without_clock(summary) != _without_clock(shown):
            bus.echo(summary)
            shown = summary
    return None


def _without_clock(summary: str) -> str:
    return summary.split("\n", 1)[-1]
