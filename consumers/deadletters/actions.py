"""The record of what an operator did to a dead letter: revealed its original, or retried it.

On the ``operations`` topic (``operator_action`` v1), not on ``audit.routing``: that topic
holds one routing decision per event for the audit store, keyed by the young person, and an
operator's action is neither (the audit store would have to learn to skip it, and the
``routing_decision`` schema has no optional place for it). ``operations`` keeps five years,
like the routing audit, is written only by ``admin`` (the one principal that may reveal or
retry) and read by ``ops``. A record says who (the Kafka principal and the operating-system
login), when, which letter and, for a retry, where the record went; never any of its content.
"""

from __future__ import annotations

import datetime as dt
import getpass
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import schemas
from bus.records import Headers, Outgoing
from consumers.deadletters.letters import Letter

REVEAL = "reveal"
RETRY = "retry"
SOURCE = "/ungebus/deadletters"


def operator() -> str:
    """Who ran the tool: ``login@host`` (``unknown`` for a login the system cannot name)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return f"{login}@{socket.gethostname()}"


def letter_key(letter: Letter) -> bytes:
    """An action's key: the letter it is about, so one letter's actions share a partition."""
    return f"{letter.topic}/{letter.partition}/{letter.offset}".encode()


def action_record(
    topic: str,
    action: str,
    letter: Letter,
    *,
    principal: str,
    who: str,
    now: dt.datetime,
    retry_count: int | None = None,
    published: tuple[int, int] | None = None,
) -> Outgoing:
    """``operator_action`` for ``operations``; ``published`` is where a retry landed."""
    record = {
        "action": action,
        "principal": principal,
        "operator": who,
        "at": now,
        "letter_topic": letter.topic,
        "letter_partition": letter.partition,
        "letter_offset": letter.offset,
        "event_id": letter.event_id,
        "source_topic": letter.source_topic,
        "source_partition": letter.source_partition,
        "source_offset": letter.source_offset,
        "retry_count": retry_count,
        "published_partition": None if published is None else published[0],
        "published_offset": None if published is None else published[1],
    }
    millis = int(now.timestamp() * 1000)
    headers = schemas.build_headers(
        ce_id=f"{action}:{letter_key(letter).decode()}:{millis}",
        ce_type=str(schemas.event_type_of("operator_action")),
        ce_source=SOURCE,
        ce_time=now,
        ce_subject="",
    )
    kept: Headers = [(name, value) for name, value in headers if name != "ce_subject"]
    return Outgoing(topic, letter_key(letter), schemas.encode("operator_action", record), kept)


@dataclass(frozen=True)
class Action:
    """One recorded action, as ``show`` lists it under its letter."""

    action: str
    at: dt.datetime
    principal: str
    operator: str
    letter: str
    retry_count: int | None
    published: str | None


def action_from(record: Mapping[str, Any]) -> Action:
    published = None
    if record.get("published_partition") is not None:
        published = (
            f"{record['source_topic']}/{record['published_partition']}/{record['published_offset']}"
        )
    return Action(
        action=record["action"],
        at=record["at"],
        principal=record["principal"],
        operator=record["operator"],
        letter=f"{record['letter_partition']}/{record['letter_offset']}",
        retry_count=record.get("retry_count"),
        published=published,
    )


def actions_of(values: Sequence[bytes | None], letter_topic: str) -> list[Action]:
    """The operator actions among raw ``operations`` values, on letters of ``letter_topic``;
    anything else there is skipped."""
    found = []
    for value in values:
        if value is None:
            continue
        try:
            name, _version, record = schemas.decode(value)
        except schemas.DecodeError:
            continue
        if name == "operator_action" and record["letter_topic"] == letter_topic:
            found.append(action_from(record))
    return found


def with_recorded_retries(letters: Sequence[Letter], done: Sequence[Action]) -> list[Letter]:
    """The letters, each with its retry count raised to the retries recorded of it: a letter
    retried twice (whose record did not fail again) has been retried twice, which its own
    headers cannot say."""
    recorded: dict[str, int] = {}
    for action in done:
        if action.action == RETRY and action.retry_count is not None:
            recorded[action.letter] = max(recorded.get(action.letter, 0), action.retry_count)
    return [
        replace(letter, retry_count=max(letter.retry_count, recorded.get(letter.at, 0)))
        for letter in letters
    ]
