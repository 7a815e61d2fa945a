"""The router's handling of one Kafka record, without faust: decode, decide, say what to write.

Every failure becomes a dead letter (failures are data), so the faust shell never sees an
exception for a bad record and never acks one silently. State changes are written into a
:class:`~streams.routing.store.SubjectStore` that the shell persists only after Kafka has the
outputs.

Bounded per record: a record whose outputs, or the state it would leave, are larger than the
producer takes (``bus.limits``) is dead-lettered before any of it is written, and a record
that fails leaves no state change behind.

Inbound records arrive sealed with their person's data key (``bus.crypto``); the router
unseals each one only to decide it (a held event stays sealed in its table, and is unsealed
again when it is decided again), and seals the details of each task it writes. A record whose
person is erased is passed over: counted and logged by pseudonym and event id, no task, no
dead letter (there is nothing left to retry). Bytes that are not a valid sealed value are a
dead letter with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import schemas
from bus.crypto import Erased, Keyring, SealError, is_sealed, sealed_header, unseal_value
from bus.erasure.record import NotAnErasure, erased_pseudonym
from bus.keystore import KeyStoreError
from bus.limits import RecordLimits
from bus.sealed_fields import seal_map
from bus.topics import CONSENT_EVENTS, ORDERED_EVENTS, Topics
from schemas.codec import DecodeError
from streams.routing import outputs
from streams.routing.consent import apply_consent_event
from streams.routing.dead_letters import DeadLetters
from streams.routing.decide import Decision, Denial, Hold, InboundEvent, Route, decide
from streams.routing.held import HeldEvent
from streams.routing.outputs import InMessage, Output, TooLarge, check_sizes
from streams.routing.policy import Policy
from streams.routing.senders import Senders
from streams.routing.store import StateTooLarge, SubjectStore

log = logging.getLogger("ungebus.router")


class RoutingObserver(Protocol):
    """Told every outcome (for operators: spans and metrics, see ``streams.runtime.observe``)."""

    def decided(
        self,
        event: InboundEvent,
        outcome: str,
        routes: Sequence[Route] = (),
        holds: Sequence[Hold] = (),
        denials: Sequence[Denial] = (),
        purged: Sequence[Hold] = (),
    ) -> None: ...

    def dead_letter(self, error_type: str) -> None: ...

    def erased(self, event_id: str | None) -> None:
        """A record of a person whose data key is gone, passed over."""
        ...


class Unobserved:
    def decided(
        self,
        event: InboundEvent,
        outcome: str,
        routes: Sequence[Route] = (),
        holds: Sequence[Hold] = (),
        denials: Sequence[Denial] = (),
        purged: Sequence[Hold] = (),
    ) -> None:
        pass

    def dead_letter(self, error_type: str) -> None:
        pass

    def erased(self, event_id: str | None) -> None:
        pass


class Rejected(Exception):
    """A record the router cannot process; the message becomes the dead letter's reason."""


@dataclass
class Router:
    """Decides every record of the ordered inbound topic, in its order, one person's events
    and consents interleaved as the bus accepted them."""

    policy: Policy
    topics: Topics
    senders: Senders
    dedupe_days: int = 90
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    observer: RoutingObserver = field(default_factory=Unobserved)
    limits: RecordLimits = field(default_factory=RecordLimits)
    # The router's access to data keys; None (unit tests) reads plain records only and
    # writes tasks with plain details.
    keyring: Keyring | None = None
    dead_letters: DeadLetters = field(init=False, repr=False, compare=False)
    # Topic names, worked out once rather than for every record.
    _task_topics: dict[tuple[str, str], str] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self.dead_letters = DeadLetters(
            self.topics.deadletter, self.limits, clock=self.clock,
            counted=self.observer.dead_letter,
        )  # fmt: skip

    def handle(self, message: InMessage, store: SubjectStore) -> list[Output]:
        """Everything to write for one record; a bad record gives exactly one dead letter,
        and leaves no state change behind."""
        now = self.clock()
        store.begin()
        try:
            if message.topic == self.topics.erasures:
                return self._forget(message, store)
            name, record = self._decode(message)
            refusal = self.senders.refusal(name, record["envelope"])
            if refusal is not None:
                event = InboundEvent(name, record)
                written = [self._unknown_sender(event, refusal, message, now)]
            elif name in CONSENT_EVENTS:
                written = self._consent(name, record, message, store, now)
            else:
                written = self._inbound(InboundEvent(name, record), message, store, now)
            return check_sizes(written, self.limits)
        except Erased as exc:
            store.undo()
            self._passed_over(exc.pseudonym, message.header("ce_id"))
            return []
        except SealError as exc:
            reason, error_type = f"the sealed record cannot be read: {exc}", "SealError"
        except KeyStoreError as exc:  # a dead letter an operator retries once it answers
            reason, error_type = f"the key store did not answer: {exc}", "KeyStoreError"
        except (Rejected, TooLarge) as exc:
            reason, error_type = str(exc), type(exc).__name__
        except schemas.RecordTooLarge as exc:
            reason, error_type = f"its outputs are too large to write: {exc}", "TooLarge"
        except StateTooLarge as exc:
            reason, error_type = f"it cannot be kept: {exc}", "TooLarge"
        except DecodeError as exc:
            reason, error_type = str(exc), "DecodeError"
        except Exception as exc:  # a bug must not stop the bus nor lose the record
            reason = f"the router failed on this record: {type(exc).__name__}: {exc}"
            error_type = type(exc).__name__
        store.undo()
        return [self.dead_letters.of_record(message, reason, error_type)]

    def expire_holds(self, pseudonym: str, store: SubjectStore) -> list[Output]:
        """Purge (with an audit record) the held events of one person whose hold ran out."""
        now = self.clock()
        held = store.held(pseudonym)
        if not any(h.until <= now for h in held):
            return []
        return self._reconsider(pseudonym, held, store, now)

    # -- erasures ---------------------------------------------------------------------------
    def _forget(self, message: InMessage, store: SubjectStore) -> list[Output]:
        """A person erased (``ungebus erase``): their consents, held events and seen event ids
        deleted (tombstones on the changelogs). The erasure record itself is the audit."""
        try:
            pseudonym = erased_pseudonym(message.key, message.value, self.limits.max_record_bytes)
        except NotAnErasure as exc:
            raise Rejected(str(exc)) from exc
        store.forget(pseudonym)
        return []

    # -- inbound partner events -------------------------------------------------------------
    def _inbound(
        self, event: InboundEvent, message: InMessage, store: SubjectStore, now: dt.datetime
    ) -> list[Output]:
        pseudonym = event.pseudonym
        traceparent = message.traceparent
        seen = store.seen(pseudonym)
        if event.event_id in seen:
            reason = "the same event id was already routed: a retry or a replay, no new task"
            self.observer.decided(event, "duplicate")
            return [self._audit(event, "duplicate", (), reason, None, now, traceparent)]
        decision = decide(event, store.consents(pseudonym), self.policy, now)
        outcome = decision.outcome
        self.observer.decided(event, outcome, decision.routes, decision.holds, decision.denials)
        out = self._tasks(event, decision.routes, decision, now, traceparent)
        out.append(
            self._audit(
                event, outcome, decision.routes, decision.reason, decision, now, traceparent
            )
        )
        if decision.holds:
            held = HeldEvent(
                event.event_id,
                message.value or b"",
                max(h.until for h in decision.holds),
                frozenset(r.task_id for r in decision.routes),
                traceparent,
            )
            store.set_held(pseudonym, (*store.held(pseudonym), held))
        keep_after = now - dt.timedelta(days=self.dedupe_days)
        store.set_seen(pseudonym, seen.add(event.event_id, event.occurred_at, keep_after))
        return out

    def _unknown_sender(
        self, event: InboundEvent, reason: str, message: InMessage, now: dt.datetime
    ) -> Output:
        """Denied, with the reason in the audit trail: an event or a consent whose claimed
        sender no partner may speak for changes nothing (and is not remembered as seen)."""
        self.observer.decided(event, "denied")
        return self._audit(event, "denied", (), reason, None, now, message.traceparent)

    # -- consent ----------------------------------------------------------------------------
    def _consent(
        self,
        name: str,
        record: Mapping[str, Any],
        message: InMessage,
        store: SubjectStore,
        now: dt.datetime,
    ) -> list[Output]:
        pseudonym = record["envelope"]["subject"]["pseudonym"]
        consents = apply_consent_event(store.consents(pseudonym), name, record, now)
        store.set_consents(pseudonym, consents)
        return self._reconsider(pseudonym, store.held(pseudonym), store, now)

    def _reconsider(
        self,
        pseudonym: str,
        held: tuple[HeldEvent, ...],
        store: SubjectStore,
        now: dt.datetime,
    ) -> list[Output]:
        """Decide the held events again (new consent, or time passed); route what may go."""
        out: list[Output] = []
        still_held: list[HeldEvent] = []
        consents = store.consents(pseudonym)
        for entry in held:
            try:
                plain = unseal_value(self.keyring, entry.wire_bytes)
            except (Erased, SealError) as exc:  # erased since it was held: purged with it
                self._passed_over(pseudonym, entry.event_id, str(exc))
                continue
            name, _version, record = schemas.decode(plain, max_size=self.limits.max_record_bytes)
            event = InboundEvent(name, record)
            decision = decide(event, consents, self.policy, now)
            new_routes = tuple(r for r in decision.routes if r.task_id not in entry.issued_task_ids)
            if not new_routes and decision.holds:
                still_held.append(entry)
                continue
            out += self._tasks(event, new_routes, decision, now, entry.traceparent)
            outcome = "held" if decision.holds else ("routed" if new_routes else "purged")
            self.observer.decided(event, outcome, new_routes, purged=decision.expired)
            reason = decision.reason if outcome != "purged" else _purge_reason(decision)
            out.append(
                self._audit(event, outcome, new_routes, reason, decision, now, entry.traceparent)
            )
            if decision.holds:
                still_held.append(entry.issued({r.task_id for r in new_routes}))
        if tuple(still_held) != held:
            store.set_held(pseudonym, tuple(still_held))
        return out

    # -- building outputs -------------------------------------------------------------------
    def _decode(self, message: InMessage) -> tuple[str, Mapping[str, Any]]:
        if message.value is None:
            raise Rejected("the record has no value (a tombstone); nothing to route")
        if is_sealed(message.value) and sealed_header(message.value).pseudonym.encode() != (
            message.key
        ):  # erasing the person of the key would leave it readable
            raise Rejected("the record is sealed under another person's key than its record key")
        plain = unseal_value(self.keyring, message.value)  # Erased, SealError
        name, _version, record = schemas.decode(plain, max_size=self.limits.max_record_bytes)
        if name not in ORDERED_EVENTS or message.topic != self.topics.inbound_events:
            raise Rejected(f"a {name} record does not belong on topic {message.topic}")
        pseudonym = record["envelope"]["subject"]["pseudonym"]
        if message.key != pseudonym.encode():
            raise Rejected(
                "the record key is not the subject pseudonym, so it would be routed out of "
                "order with the person's other events and consents"
            )
        return name, record

    def _task_topic(self, kommunekode: str, unit: str) -> str:
        topic = self._task_topics.get((kommunekode, unit))
        if topic is None:  # at most one per unit and municipality; an unknown one raises
            topic = self._task_topics[kommunekode, unit] = self.topics.tasks(kommunekode, unit)
        return topic

    def _tasks(
        self,
        event: InboundEvent,
        routes: tuple[Route, ...],
        decision: Decision,
        now: dt.datetime,
        traceparent: str | None,
    ) -> list[Output]:
        return [
            outputs.routed_task(
                self._task_topic(r.kommunekode, r.unit),
                event,
                r,
                decision,
                now,
                traceparent,
                sealed_details=self._sealed(event.pseudonym, r),
            )
            for r in routes
        ]

    def _sealed(self, pseudonym: str, route: Route) -> bytes | None:
        """The route's details sealed with the person's key (None without a keyring)."""
        if self.keyring is None:
            return None
        return seal_map(self.keyring, pseudonym, route.details)

    def _passed_over(self, pseudonym: str, event_id: str | None, why: str = "") -> None:
        self.observer.erased(event_id)
        log.info(
            "Passed over event %s of %s: the person's data key is erased%s",
            event_id, pseudonym, f" ({why})" if why else "",
        )  # fmt: skip

    def _audit(
        self,
        event: InboundEvent,
        outcome: str,
        routes: tuple[Route, ...],
        reason: str,
        decision: Decision | None,
        now: dt.datetime,
        traceparent: str | None,
    ) -> Output:
        return outputs.audit(
            self.topics.audit_routing,
            event,
            outcome,
            routes,
            reason,
            decision,
            self.policy,
            now,
            traceparent,
        )


def _purge_reason(decision: Decision) -> str:
    return "; ".join(
        f"no consent '{h.purpose}' to {h.unit}@{h.kommunekode} arrived by "
        f"{h.until.isoformat()}: the held event is purged (rule {h.rule_id})"
        for h in decision.expired
    )
