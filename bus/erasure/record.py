"""The erasure record (schema ``erasure``) on ``erasures``: pseudonymous, written by
``ungebus erase`` once the person's data keys are destroyed."""

from __future__ import annotations

import schemas
from bus.erasure.fact import Erasure, erasure_from
from bus.records import Outgoing
from schemas.mapping import to_millis

SOURCE = "/ungebus/erase"


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


def erasure_of(key: bytes | None, value: bytes | None, max_size: int) -> Erasure:
    """The erasure an ``erasures`` record holds; :class:`NotAnErasure` (or the codec's
    ``DecodeError``) if it is not an erasure keyed by that person's pseudonym (a record out of
    place must not make a component forget someone else)."""
    name, _version, record = schemas.decode(value or b"", max_size=max_size)
    if name != "erasure":
        raise NotAnErasure(f"a {name} record does not belong on the erasures topic")
    if key != str(record["subject_pseudonym"]).encode():
        raise NotAnErasure("the record key is not the erased person's pseudonym")
    return erasure_from(record)


def erased_pseudonym(key: bytes | None, value: bytes | None, max_size: int) -> str:
    """Whom an ``erasures`` record erases (:func:`erasure_of`)."""
    return erasure_of(key, value, max_size).subject_pseudonym
