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

import click

from bus.processes import stop_on_signals
from deploy.local.play import Interrupted, Waits, play_sample_day, today
from deploy.local.stack import READY_TIMEOUT_S, Stack, StackError, StackSettings
from deploy.local.traffic import DemoPartners, Feeder, TrafficError, sample_day
from deploy.local.watch import TopicWatcher, WatchError
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
    settings = StackSettings()
    stop = threading.Event()
    stop_on_signals(stop, click.echo)
    stack = Stack(settings, click.echo)
    watcher: TopicWatcher | None = None
    feeding: threading.Thread | None = None
    failure: str | None = None
    try:
        stack.up(stop, READY_TIMEOUT_S)
        if not stop.is_set():
            watcher = TopicWatcher(settings)
            watcher.start()
            click.echo(where_to_look(settings))
            if count:
                seed = random.randrange(1_000_000) if seed is None else seed
                feeding = _feed_in_background(settings, watcher, stack, stop, count, seed)
            failure = _watch(stack, watcher, stop, settings.inbox_kommunekode)
    except (StackError, WatchError) as exc:
        failure = str(exc)
    finally:
        stop.set()
        if feeding is not None:
            feeding.join(30)
        if watcher is not None:
            watcher.close()
        stack.down()
    if failure:
        raise click.ClickException(failure)
    click.echo("Stopped.")


def where_to_look(settings: StackSettings) -> str:
    code = settings.inbox_kommunekode
    municipality = f"{KOMMUNEKODER.get(code, 'kommunekode')} {code}"
    lines = [
        "",
        "ungebus is running. Press Ctrl-C to stop.",
        f"  caseworker inbox:  {settings.inbox_url}/ (for {municipality})",
    ]
    sign_in = settings.var_dir / "inbox-demo.txt"
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


def _feed_in_background(
    settings: StackSettings,
    watcher: TopicWatcher,
    stack: Stack,
    stop: threading.Event,
    count: int,
    seed: int,
) -> threading.Thread:
    def feed() -> None:
        waits = Waits(stop, stack.first_dead)
        try:
            feeder = Feeder(settings, DemoPartners.load(settings), watcher)
        except TrafficError as exc:
            click.echo(f"No sample traffic: {exc}")
            return
        click.echo(f"Feeding a sample day: {count} synthetic partner events (seed {seed})")
        try:
            day = sample_day(seed, count, today())
            play_sample_day(day, feeder, watcher, waits, click.echo, pace_s=PACE_S)
            click.echo("The sample day is processed.")
        except Interrupted:
            pass
        except TrafficError as exc:
            click.echo(f"The sample traffic stopped: {exc}")
        finally:
            feeder.close()

    thread = threading.Thread(target=feed, name="sample-day", daemon=True)
    thread.start()
    return thread


def _watch(
    stack: Stack, watcher: TopicWatcher, stop: threading.Event, inbox_kommunekode: str
) -> str | None:
    """Print the summary when it changed, every few seconds, until Ctrl-C or a death."""
    shown, next_at = "", time.monotonic() + SUMMARY_EVERY_S
    while not stop.wait(1.0):
        if (report := stack.first_dead()) is not None:
            return report
        if time.monotonic() < next_at:
            continue
        next_at += SUMMARY_EVERY_S
        summary = watcher.read(lambda t: t.render(follow_in=inbox_kommunekode))
        if _without_clock(summary) != _without_clock(shown):
            click.echo(summary)
            shown = summary
    return None


def _without_clock(summary: str) -> str:
    return summary.split("\n", 1)[-1]
