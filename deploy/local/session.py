"""One flow for ``ungebus run`` and ``ungebus demo``: start the bus, watch its topics, hand it
to a scenario, stop everything that was started, and say how it ended.

The two commands differ only in their :class:`Scenario`: ``run`` feeds a sample day in the
background and prints the summary until Ctrl-C; ``demo`` plays a sample day at once, prints
what the bus did and follows one event to its take-over. Both stop on Ctrl-C (SIGINT) or
SIGTERM, and on a component that dies beyond its restart budget (exit 1, with its log).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import click

from bus.processes import stop_on_signals
from deploy.local.play import Waits
from deploy.local.stack import READY_TIMEOUT_S, Stack, StackError, StackSettings
from deploy.local.traffic import TrafficError
from deploy.local.watch import TopicWatcher, WatchError


@dataclass(frozen=True)
class RunningBus:
    """What a scenario gets: the bus, up and ready, and the watcher of its topics."""

    settings: StackSettings
    stack: Stack
    watcher: TopicWatcher
    stop: threading.Event
    echo: Callable[[str], None]

    @property
    def waits(self) -> Waits:
        """Waits that give up on Ctrl-C or a component that died."""
        return Waits(self.stop, self.stack.first_dead)


class Scenario(Protocol):
    """What ``run`` or ``demo`` does with the running bus."""

    stopped_while_starting: str | None
    """The failure to report when Ctrl-C comes before the bus is up (None: not a failure)."""

    def play(self, bus: RunningBus) -> str | None:
        """Use the bus until done or stopped; a failure to report, or None."""

    def close(self) -> None:
        """Release what ``play`` holds; called once ``stop`` is set, before the bus stops."""

    def done(self, settings: StackSettings) -> str:
        """The last line when all went well."""


def run_scenario(scenario: Scenario, echo: Callable[[str], None] = click.echo) -> None:
    """Start the bus, play ``scenario`` on it, stop it; :class:`click.ClickException` (exit 1)
    with the failure, if any."""
    settings = StackSettings()
    stop = threading.Event()
    stop_on_signals(stop, echo)
    stack = Stack(settings, echo)
    watcher: TopicWatcher | None = None
    failure: str | None = None
    try:
        stack.up(stop, READY_TIMEOUT_S)
        if stop.is_set():
            failure = scenario.stopped_while_starting
        else:
            settings = stack.settings  # with the stack's Kafka login
            watcher = TopicWatcher(settings)
            watcher.start()
            failure = scenario.play(RunningBus(settings, stack, watcher, stop, echo))
    except (StackError, TrafficError, WatchError) as exc:
        failure = str(exc)
    finally:
        stop.set()
        scenario.close()
        if watcher is not None:
            watcher.close()
        stack.down()
    if failure:
        raise click.ClickException(failure)
    echo(scenario.done(settings))
