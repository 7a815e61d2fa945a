"""The erasure record (schema ``erasure``) on ``erasures``: pseudonymous, written by
``ungebus erase`` once the person's data keys are destroyed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import schemas
from bus.records import Outgoing
from schemas.mapping import to_millis

SOURCE = "/ungebus/erase"


@dataclass(frozen=True)
class Erasure:
    subject_pseudonym: str
    erased_at: dt.datetime
    reason: str
    principal: str
    operator: str
    keys_destroyed: int


def erasure_record(topic: str, erasure: Erasure) -> Outgoing:
    """The record to publish: keyed by the pseudonym (the partition the person's events are
    in), the ``erasure`` schema's newest version."""
    value = schemas.encode(
        "erasure",
        {
            "subject_pseudonym": erasure.subject_pseudonym,
            "erased_at": to_millis(erasure.erased_at),
            "reason": erasure.reason,
            "principal": erasure.principal,
            "operator": erasure.operator,
            "keys_destroyed": erasure.keys_destroyed,
        },
    )
    return Outgoing(topic, erasure.subject_pseudonym.encode(), value, [])


class NotAnErasure(ValueError):
    """A record on ``erasures`` that is not an erasure of its key's person."""


def erased_pseudonym(key: bytes | None, value: bytes | None, max_size: int) -> str:
    """Whom an ``erasures`` record erases; :class:`NotAnErasure` (or the codec's
    ``DecodeError``) if it is not an erasure keyed by that person's pseudonym (a record out of
    place must not make a component forget someone else)."""
    name, _version, record = schemas.decode(value or b"", max_size=max_size)
    if name != "erasure":
        raise NotAnErasure(f"a {name} record does not belong on the erasures topic")
    pseudonym = str(record["subject_pseudonym"])
    if key != pseudonym.encode():
        raise NotAnErasure("the record key is not the erased person's pseudonym")
    return pseudonym


def erasure_from(record: Mapping[str, Any]) -> Erasure:
    """An erasure from a decoded ``erasure`` record."""
    return Erasure(
        subject_pseudonym=record["subject_pseudonym"],
        erased_at=record["erased_at"],
        reason=record["reason"],
        principal=record["principal"],
        operator=record["operator"],
        keys_destroyed=record["keys_destroyed"],
    )
