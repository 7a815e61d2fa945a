"""The real replay's writes: the routes an event has under the policy in force that are not on
their task topics yet, as the router writes them.

The task and audit records come from the router's own output builder
(``streams.routing.outputs``): the same deterministic task id for the same event and unit, the
same record bytes for the same decision and time, the same headers and key. A task id that is
already on its topic (read before the replay starts, and each one written since) is never
written again, so a replay can be repeated: the second finds nothing new. Routes that wait
for a consent are counted, not held: the router holds only what it routed itself, and routes
them when the consent comes.

The producer is the bus's (idempotent, acks=all); a record Kafka does not acknowledge makes
the replay fail at the end, saying how many, and a new replay writes what is missing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from confluent_kafka import KafkaError, Message, Producer

from bus.crypto import Keyring
from bus.sealed_fields import seal_map
from bus.settings import Settings
from streams.replay.events import ToDecide
from streams.routing import outputs
from streams.routing.decide import Decision, Route
from streams.routing.outputs import Output, TooLarge, check_sizes
from streams.routing.policy import Policy

FLUSH_TIMEOUT_S = 60.0


class RerouteError(RuntimeError):
    """Kafka did not acknowledge every record the replay wrote."""


@dataclass
class Rerouted:
    """What the real replay did."""

    new_tasks: int = 0
    events_routed: int = 0  # events that got at least one new task
    already_there: int = 0  # routes whose task was on its topic already
    waiting_for_consent: int = 0
    too_large: int = 0
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.new_tasks:,} new tasks for {self.events_routed:,} events written; "
            f"{self.already_there:,} routes were on their task topics already"
        )
        if self.waiting_for_consent:
            text += (
                f"; {self.waiting_for_consent:,} routes wait for a consent (not held by the "
                "replay: the router routes them when it holds the event)"
            )
        if self.too_large:
            text += f"; {self.too_large:,} events left out: their records are too large"
        return text


class Rerouter:
    """Writes the new routes of each decided event; ``close`` waits for Kafka's acks."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        existing: set[str],
        now: dt.datetime,
        since: dt.datetime,
        keyring: Keyring | None = None,
    ) -> None:
        self.keyring = keyring  # seals the tasks' details, as the router does
        self.topics = settings.topics
        self.policy = policy
        self.existing = existing
        self.now = now
        self.since = since
        self.limits = settings.record_limits
        self.done = Rerouted()
        self._producer = Producer(settings.producer_config())

    def route(self, item: ToDecide, decision: Decision) -> None:
        new = tuple(r for r in decision.routes if r.task_id not in self.existing)
        self.done.already_there += len(decision.routes) - len(new)
        self.done.waiting_for_consent += len(decision.holds)
        if not new:
            return
        written = self.records(item, decision, new)
        try:
            check_sizes(written, self.limits)
        except TooLarge:
            self.done.too_large += 1
            return
        for output in written:
            self._produce(output)
        self.existing.update(r.task_id for r in new)
        self.done.new_tasks += len(new)
        self.done.events_routed += 1

    def records(self, item: ToDecide, decision: Decision, new: tuple[Route, ...]) -> list[Output]:
        """The tasks of the new routes and their audit decision, as the router writes them."""
        event, traceparent = item.event, item.message.traceparent
        written = [
            outputs.routed_task(
                self.topics.tasks(r.kommunekode, r.unit), event, r, decision, self.now,
                traceparent, self._sealed(event.pseudonym, r),
            )
            for r in new
        ]  # fmt: skip
        outcome = "held" if decision.holds else "routed"
        reason = (
            f"replay of the history since {self.since.isoformat()}: "
            + replace(decision, routes=new).reason
        )
        written.append(
            outputs.audit(
                self.topics.audit_routing, event, outcome, new, reason, decision, self.policy,
                self.now, traceparent,
            )
        )  # fmt: skip
        return written

    def _sealed(self, pseudonym: str, route: Route) -> bytes | None:
        return None if self.keyring is None else seal_map(self.keyring, pseudonym, route.details)

    def close(self) -> Rerouted:
        left = self._producer.flush(FLUSH_TIMEOUT_S)
        if left:
            self.done.failed.append(f"{left} records not acknowledged within {FLUSH_TIMEOUT_S} s")
        if self.done.failed:
            shown = "; ".join(self.done.failed[:5])
            raise RerouteError(
                f"Kafka did not take {len(self.done.failed)} of the replay's writes ({shown}); "
                "replay again: what is on the task topics is not written twice"
            )
        return self.done

    def _produce(self, output: Output) -> None:
        while True:
            try:
                self._producer.produce(
                    output.topic, key=output.key, value=output.value, headers=list(output.headers),
                    on_delivery=self._delivered,
                )  # fmt: skip
                break
            except BufferError:  # librdkafka's queue is full: let it send some first
                self._producer.poll(0.05)
        self._producer.poll(0)

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.done.failed.append(f"{message.topic()}: {error.str()}")
