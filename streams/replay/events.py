"""What a replay decides: the events since a date, each with its young person's consents.

Consents are a fold over the whole inbound topic (a consent may be years older than the event
it covers), in each partition's order as the router folds them. Every event is then decided
with the consents as they stand at the end of that history, at one ``now`` (when the replay
started): a task written today discloses fields today, so it must rest on a consent that is
active today, and a consent withdrawn since must not be brought back by reading history up to
the event only. For a held event that a later consent released this gives the router's own
route (the same task id, fields and due date).

Records the router would not route are left out and counted by reason, as the router would
dead-letter or deny them: bytes it cannot decode, a key that is not the subject's pseudonym,
a sender no partner may speak for, an event id already seen.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import schemas
from bus.limits import RecordLimits
from bus.topics import CONSENT_EVENTS, ORDERED_EVENTS
from schemas.codec import DecodeError
from streams.routing.consent import ConsentState, apply_consent_event
from streams.routing.decide import InboundEvent
from streams.routing.outputs import InMessage
from streams.routing.senders import Senders

_CONSENT_IDS = frozenset(
    sv.schema_id for sv in schemas.catalogue().by_id.values() if sv.name in CONSENT_EVENTS
)


@dataclass
class Tally:
    """How many records were read, folded, decided and left out (by reason)."""

    consents: int = 0
    decided: int = 0
    left_out: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class ToDecide:
    """One event to decide again, with its person's consents and where it was read."""

    message: InMessage
    event: InboundEvent
    consents: ConsentState


def fold_consents(
    messages: Iterable[InMessage],
    senders: Senders,
    now: dt.datetime,
    tally: Tally,
    limits: RecordLimits | None = None,
) -> dict[str, ConsentState]:
    """Consent state per pseudonym after every consent record of ``messages``.

    Only consent records are decoded (their schema id is in the wire header); one the router
    would refuse (bad bytes, wrong key, unknown sender) changes nothing here either.
    """
    states: dict[str, ConsentState] = {}
    for message in messages:
        value = message.value
        if value is None or len(value) < 5 or int.from_bytes(value[1:5], "big") not in _CONSENT_IDS:
            continue
        decoded = _routable(message, senders, limits)
        if isinstance(decoded, str):
            continue
        name, record = decoded
        pseudonym = record["envelope"]["subject"]["pseudonym"]
        states[pseudonym] = apply_consent_event(
            states.get(pseudonym, ConsentState()), name, record, now
        )
        tally.consents += 1
    return states


def events_to_decide(
    messages: Iterable[InMessage],
    senders: Senders,
    consents: Mapping[str, ConsentState],
    tally: Tally,
    limits: RecordLimits | None = None,
) -> Iterator[ToDecide]:
    """The partner events of ``messages`` the router would decide, each once."""
    seen: set[str] = set()
    for message in messages:
        decoded = _routable(message, senders, limits)
        if isinstance(decoded, str):
            tally.left_out[decoded] += 1
            continue
        name, record = decoded
        if name in CONSENT_EVENTS:
            continue
        event = InboundEvent(name, record)
        if event.event_id in seen:
            tally.left_out["the same event id again"] += 1
            continue
        seen.add(event.event_id)
        tally.decided += 1
        yield ToDecide(message, event, consents.get(event.pseudonym, ConsentState()))


def _routable(
    message: InMessage, senders: Senders, limits: RecordLimits | None
) -> tuple[str, Mapping[str, Any]] | str:
    """(schema name, record), or why the router would not route the record."""
    if message.value is None:
        return "no value (a tombstone)"
    max_size = limits.max_record_bytes if limits else schemas.DEFAULT_MAX_SIZE
    try:
        name, _version, record = schemas.decode(message.value, max_size=max_size)
    except DecodeError as exc:
        return f"undecodable ({exc.code})"
    if name not in ORDERED_EVENTS:
        return f"a {name} record does not belong on the inbound topic"
    envelope = record["envelope"]
    if message.key != str(envelope["subject"]["pseudonym"]).encode():
        return "the key is not the subject's pseudonym"
    if senders.refusal(name, envelope) is not None:
        return "a sender no partner may speak for"
    return name, record
