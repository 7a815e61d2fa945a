"""From one partner payload to one Kafka record, or a rejection that says why: no I/O here.

The HTTP API and the file drop share this, so a payload means the same whichever way it came:
validated by the edge model, its source checked against the partner, its event id made stable,
encoded in the wire format with CloudEvents headers, keyed by the subject pseudonym. The
``traceparent`` header is added when the record is sent, by the span that sends it.

Every value leaves a connector sealed with its person's data key (:func:`sealed`, the one step
here that may do I/O: a person new to the key store gets a key, written to Kafka first), so
nothing personal is readable on ``inbound.events`` once the person's key is destroyed. The key
and the headers stay clear: pseudonym, event id, type, source kind.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import ValidationError

from bus.crypto import Keyring, seal
from bus.partners import SOURCES, Partner
from bus.topics import Topics, TopicSpec
from schemas import (
    PARTNER_KINDS,
    PartnerEvent,
    cloudevent_headers,
    encode,
    field_errors,
    parse_partner,
    pseudonym,
    to_record,
)

# uuid5 namespace of event ids the connectors derive (never change it: ids would change).
EVENT_ID_NAMESPACE = uuid.UUID("6f1d0a3c-2b7e-5c4a-9e1f-7a8b9c0d1e2f")
MAX_IDEMPOTENCY_KEY = 200
# The header as the OpenAPI document declares it: 1-200 printable ASCII characters, not all
# spaces (HTTP drops a value's leading and trailing spaces, so "  " arrives empty).
IDEMPOTENCY_KEY_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_IDEMPOTENCY_KEY,
    "pattern": "^[ -~]*[!-~][ -~]*$",
}


@dataclass(frozen=True)
class Outgoing:
    """A record ready for Kafka: what the producer sends, and what the partner is told."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, str | bytes | None]] = field(repr=False)
    event_id: str
    event_type: str
    event_kind: str = ""  # the partner kind (dropout_notice), for spans and counts
    source_kind: str = ""  # institution, kommune, ...: never the source's id
    partner: str = ""


@dataclass(frozen=True)
class Rejection:
    """Why a payload was not accepted: ``invalid`` (HTTP 422) or ``forbidden`` (HTTP 403)."""

    status: Literal["invalid", "forbidden"]
    errors: list[dict[str, str]]


def topic_for(kind: str, topics: Topics) -> str:
    """Every kind, consents included, goes to the one ordered inbound topic: what the bus
    accepted for one person is decided in the order it was accepted."""
    if kind not in PARTNER_KINDS:
        raise ValueError(f"unknown partner kind {kind!r}")
    return topics.inbound_events


def connector_topics(topics: Topics, replication_factor: int = 1) -> list[TopicSpec]:
    """The catalogue's specs of every topic the connectors publish to: the inbound events,
    and the key store where they keep the data keys they seal them with."""
    names = {topics.inbound_events, topics.keys}
    return [
        replace(spec, replication_factor=replication_factor)
        for spec in topics.catalogue()
        if spec.name in names
    ]


def idempotency_key_error(key: str) -> dict[str, str] | None:
    """The header's rule, as received (trimmed by HTTP); ``IDEMPOTENCY_KEY_SCHEMA`` says it."""
    if 1 <= len(key) <= MAX_IDEMPOTENCY_KEY and key.isascii() and key.isprintable():
        return None
    return {
        "field": "Idempotency-Key",
        "reason": f"must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters",
        "code": "idempotency_key",
    }


def derived_event_id(
    partner: str, kind: str, event: PartnerEvent, key: bytes, idempotency_key: str | None
) -> str:
    """A stable id for a payload without ``event_id``, so a partner's retry is no new event.

    From the partner's ``Idempotency-Key`` if it sent one, else from the payload's content
    with the CPR number replaced by its pseudonym (an id must not let anyone guess a CPR).
    """
    if idempotency_key is not None:
        return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"key\n{partner}\n{idempotency_key}"))
    content = event.model_dump(mode="json", exclude={"event_id"})
    content["subject"]["cpr"] = pseudonym(event.subject.cpr, key)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"content\n{partner}\n{kind}\n{canonical}"))


def prepare(
    partner: Partner,
    kind: str,
    payload: bytes | str | Mapping[str, Any],
    *,
    pseudonym_key: bytes,
    topics: Topics,
    idempotency_key: str | None = None,
    today: dt.date | None = None,
) -> Outgoing | Rejection:
    """Validate, authorise the source, map and encode one payload of ``kind`` from ``partner``."""
    if not partner.may_send(kind):
        return Rejection("forbidden", [kind_not_allowed(partner, kind)])
    try:
        event = parse_partner(kind, payload, today=today)
    except ValidationError as exc:
        return Rejection("invalid", field_errors(exc))
    event_id = derived_event_id(partner.name, kind, event, pseudonym_key, idempotency_key)
    name, record = to_record(event, pseudonym_key, event_id)
    envelope = record["envelope"]
    source = envelope["source"]
    if not partner.may_claim(source["kind"], source["id"]):
        allowed = ", ".join(partner.sources_for(kind)) or "none"
        return Rejection(
            "forbidden",
            [
                {
                    "field": SOURCES[kind][1],
                    "reason": f"{source['id']} is not a source partner {partner.name!r} may "
                    f"send for; its {source['kind']} sources: {allowed}",
                    "code": "source_not_allowed",
                }
            ],
        )
    return Outgoing(
        topic=topic_for(kind, topics),
        key=envelope["subject"]["pseudonym"].encode(),
        value=encode(name, record),
        headers=list(cloudevent_headers(record)),
        event_id=envelope["event_id"],
        event_type=envelope["event_type"],
        event_kind=kind,
        source_kind=source["kind"],
        partner=partner.name,
    )


def sealed(out: Outgoing, keyring: Keyring) -> Outgoing:
    """``out`` with its value sealed under its subject's data key (the record key is the
    pseudonym). ``bus.keystore.KeyStoreError`` when a new key could not be stored: then
    nothing may be sent, and the partner is told to retry."""
    return replace(out, value=seal(keyring, out.key.decode("ascii"), out.value))


def kind_not_allowed(partner: Partner, kind: str) -> dict[str, str]:
    return {
        "field": "(kind)",
        "reason": f"partner {partner.name!r} may not send {kind}; it may send "
        + ", ".join(sorted(partner.kinds)),
        "code": "kind_not_allowed",
    }
