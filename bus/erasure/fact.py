"""An erasure as every component keeps it: whom (the pseudonym only), when, why and by whom.
No wire format here (``bus.erasure.record`` has that), so the audit store's readers import it
without the Avro codec."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Erasure:
    """A person erased (``ungebus erase``); nothing personal in it."""

    subject_pseudonym: str
    erased_at: dt.datetime
    reason: str
    principal: str
    operator: str
    keys_destroyed: int


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
