"""A replay from start to end, without the command line (the CLI and the bench call these).

Two reads of the inbound topic, both up to the offsets it had when the replay started: the
whole topic for the consents (folded in each partition's order), then the records since the
date for the events to decide. The real replay reads the task ids already on the task topics
before it writes anything.

The inbound records are sealed per person: a replay unseals each one with its keyring (it runs
as the admin) and seals the details of the tasks it writes, as the router does. A record whose
person is erased is left out and counted, as the router passes it over.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from dataclasses import replace as replaced
from typing import IO

from bus.crypto import Erased, Keyring, SealError, unseal_value
from bus.settings import Settings
from streams.replay.compare import compare
from streams.replay.events import Tally, ToDecide, events_to_decide, fold_consents
from streams.replay.history import History, Span, task_ids_on
from streams.replay.report import ChangesCsv, Preview
from streams.replay.reroute import Rerouted, Rerouter
from streams.routing.decide import decide
from streams.routing.outputs import InMessage
from streams.routing.policy import Policy
from streams.routing.senders import Senders

# A progress bar: (label, how many records) -> a context giving "n more done".
Bar = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]
_EVERY = 500  # records between progress updates


@contextlib.contextmanager
def no_bar(_label: str, _length: int) -> Iterator[Callable[[int], None]]:
    yield lambda _n: None


@dataclass(frozen=True)
class Replay:
    """What every replay needs: where, who may send, since when, and its one ``now``."""

    settings: Settings
    senders: Senders
    since: dt.datetime
    now: dt.datetime
    bar: Bar = no_bar
    keyring: Keyring | None = None  # unseals the records; None: plain records only

    def history(self, history: History) -> list[Span]:
        """The inbound topic as it is now: what this replay reads, and no more."""
        return history.whole(self.settings.topics.inbound_events)

    def events(self, history: History, whole: list[Span], tally: Tally) -> Iterator[ToDecide]:
        """The events since ``since`` to decide, with their people's consents."""
        limits = self.settings.record_limits
        with self.bar("consents", sum(s.size for s in whole)) as done:
            records = _counted(history.read(whole), done)
            plain = _unsealed(records, self.keyring, None)
            consents = fold_consents(plain, self.senders, self.now, tally, limits)
        spans: list[Span] = history.since(whole, self.since)
        with self.bar("events", sum(s.size for s in spans)) as done:
            records = _counted(history.read(spans), done)
            plain = _unsealed(records, self.keyring, tally)
            yield from events_to_decide(plain, self.senders, consents, tally, limits)


def preview(
    replay: Replay, current: Policy, candidate: Policy, csv_out: IO[str] | None = None
) -> tuple[Preview, Tally]:
    """Every event since the date decided under both policies; nothing written to Kafka."""
    tally = Tally()
    report = Preview(current.version, candidate.version, replay.since)
    rows = ChangesCsv(csv_out) if csv_out is not None else None
    history = History(replay.settings)
    try:
        for item in replay.events(history, replay.history(history), tally):
            before = decide(item.event, item.consents, current, replay.now)
            after = decide(item.event, item.consents, candidate, replay.now)
            changes = compare(item.event, before, after)
            report.add(before, after, changes)
            if rows is not None and changes:
                rows.write(changes)
    finally:
        history.close()
    return report, tally


def reroute(replay: Replay, policy: Policy) -> tuple[Rerouted, Tally]:
    """Every event since the date routed again under ``policy``: the tasks not yet on their
    topics written, with their audit decisions."""
    tally = Tally()
    history = History(replay.settings)
    try:
        # History first, then the tasks: a task the router wrote for an event of that history
        # before the replay started is seen (run it when the router has caught up: see README).
        whole = replay.history(history)
        existing = task_ids_on(history, replay.settings.topics.all_tasks())
        writer = Rerouter(
            replay.settings, policy, existing, replay.now, replay.since, replay.keyring
        )
        for item in replay.events(history, whole, tally):
            writer.route(item, decide(item.event, item.consents, policy, replay.now))
        done = writer.close()
    finally:
        history.close()
    return done, tally


def _unsealed(
    messages: Iterable[InMessage], keyring: Keyring | None, tally: Tally | None
) -> Iterator[InMessage]:
    """The records with their values unsealed; those that do not open are left out (and
    counted in ``tally``, if given)."""
    for message in messages:
        if message.value is not None:
            try:
                message = replaced(message, value=unseal_value(keyring, message.value))
            except Erased:
                if tally is not None:
                    tally.left_out["the person is erased (no data key)"] += 1
                continue
            except SealError:
                if tally is not None:
                    tally.left_out["a sealed value that does not open"] += 1
                continue
        yield message


def _counted(messages: Iterable[InMessage], done: Callable[[int], None]) -> Iterator[InMessage]:
    count = 0
    for message in messages:
        yield message
        count += 1
        if count == _EVERY:
            done(count)
            count = 0
    done(count)
