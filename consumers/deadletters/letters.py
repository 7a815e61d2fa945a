"""A dead letter as an operator sees it, which letters a filter keeps, and their counts.

Pure: no Kafka, no clock (``now`` is passed in). Every writer of the bus's dead letters (the
router and the tracker, ``streams.routing.dead_letters``; the inbox and the audit store,
``bus.records``; the Kafka gateway, ``connectors.gateway``) writes the same ``dead_letter``
record (v1, or v2 with ``original_value_sha256``/``original_value_size``), a copy of the
original (key, value, headers) or, when it was too large to copy, a reference to where it
stays. What is safe to print is kept apart from the original's bytes: see :meth:`Letter.safe`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import schemas
from bus.crypto import SealError, is_sealed, sealed_header

Header = tuple[str, bytes | None]
NO_POSITION = -1  # a record a component made itself and Kafka refused: never consumed
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_LETTER_AT = re.compile(r"(?:(\d+)/)?(\d+)")
# Anything shaped like a CPR number (DDMMYY-SSSS or ten digits on their own) in free text.
_CPR_SHAPED = re.compile(r"(?<![0-9A-Za-z])\d{6}-?\d{4}(?![0-9A-Za-z])")
AGE_BUCKETS = (
    (dt.timedelta(hours=1), "< 1 h"),
    (dt.timedelta(days=1), "1 h - 1 d"),
    (dt.timedelta(days=7), "1 - 7 d"),
    (dt.timedelta(days=30), "7 - 30 d"),
)
OLDEST_BUCKET = "> 30 d"


class LetterError(ValueError):
    """Operator input that cannot name a letter or a filter; the message names the field."""


@dataclass(frozen=True)
class Letter:
    """One dead letter: where it is on the dead-letter topic, what failed, and the original
    (its bytes only when the letter copied them)."""

    topic: str
    partition: int
    offset: int
    failed_at: dt.datetime
    component: str
    error_type: str
    reason: str
    event_id: str | None
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    value_sha256: str | None
    value_size: int | None
    retry_count: int

    @property
    def at(self) -> str:
        """Where the letter is on its topic, as the commands take it: ``partition/offset``."""
        return f"{self.partition}/{self.offset}"

    @property
    def source(self) -> str:
        return f"{self.source_topic}/{self.source_partition}/{self.source_offset}"

    @property
    def by_reference(self) -> bool:
        """Too large to copy: only its SHA-256, size and position are kept."""
        return self.value is None and self.value_sha256 is not None

    @property
    def tombstone(self) -> bool:
        """The original had no value at all."""
        return self.value is None and self.value_sha256 is None

    @property
    def kind(self) -> str | None:
        """The original's event kind from its CloudEvents type header, if it names one."""
        for name, value in self.headers:
            if name == "ce_type" and value is not None:
                text = value.decode("utf-8", "replace")
                try:
                    return schemas.schema_name_of(text)
                except ValueError:
                    return None
        return None

    @property
    def key_size(self) -> int:
        return len(self.key or b"")

    @property
    def headers_size(self) -> int:
        return sum(len(n.encode()) + len(v or b"") for n, v in self.headers)

    def safe(self) -> dict[str, Any]:
        """What an operator may always see: coordinates, ids, reason, sizes; never the
        original's key (a pseudonym), value or header values."""
        return {
            "letter": self.at,
            "failed_at": self.failed_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "component": self.component,
            "error_type": self.error_type,
            "event_id": self.event_id,
            "kind": self.kind,
            "source": self.source,
            "kept": "by reference" if self.by_reference else "copy",
            "key_bytes": self.key_size,
            "value_bytes": self.value_size if self.value is None else len(self.value),
            "value_sha256": self.value_sha256,
            "headers": [name for name, _ in self.headers],
            "retries": self.retry_count,
            "reason": masked(self.reason),
            "sealed": self.sealed_for,
        }

    @property
    def sealed_for(self) -> str | None:
        """The pseudonym a sealed original belongs to (read from its clear header, no key);
        None when the original is not a sealed value the letter copied."""
        if not is_sealed(self.value):
            return None
        try:
            return sealed_header(self.value or b"").pseudonym
        except SealError:
            return None


def letter_from(
    topic: str,
    partition: int,
    offset: int,
    record: Mapping[str, Any],
    own_headers: Iterable[tuple[str, bytes | None]] = (),
) -> Letter:
    """A decoded ``dead_letter`` record at its place; the retry count from the letter's own
    headers or from the original's, whichever says more."""
    headers = tuple((h["key"], h["value"]) for h in record.get("original_headers") or [])
    value = record.get("original_value")
    sha256 = record.get("original_value_sha256")
    size = record.get("original_value_size")
    if sha256 is None and value is not None:  # a v1 letter: always a copy
        size = len(value)
    return Letter(
        topic=topic,
        partition=partition,
        offset=offset,
        failed_at=record["failed_at"],
        component=record["component"],
        error_type=record["error_type"],
        reason=record["reason"],
        event_id=record.get("event_id"),
        source_topic=record["source_topic"],
        source_partition=record["source_partition"],
        source_offset=record["source_offset"],
        key=record.get("original_key"),
        value=value,
        headers=headers,
        value_sha256=sha256,
        value_size=size,
        retry_count=max(schemas.retry_count(own_headers), schemas.retry_count(headers)),
    )


def masked(text: str) -> str:
    """Free text with anything shaped like a CPR number hidden (the writers never put one in a
    reason; an exception's message quoted in one might)."""
    return _CPR_SHAPED.sub("[hidden: CPR-shaped]", text)


def parse_letter_at(text: str, option: str = "LETTER") -> tuple[int, int]:
    """``partition/offset`` (or an offset on partition 0) as ``list`` prints it."""
    match = _LETTER_AT.fullmatch(text.strip())
    if match is None:
        raise LetterError(
            f"{option}: {text!r} is not a letter's coordinates; give partition/offset as "
            "`ungebus deadletters list` prints them, e.g. 0/42"
        )
    return int(match.group(1) or 0), int(match.group(2))


def parse_age(text: str, option: str) -> dt.timedelta:
    """``90m``, ``2h``, ``7d``, ``1w``, ``1d12h``: a duration for an age filter."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or _DURATION.sub("", cleaned).strip():
        raise LetterError(
            f"{option}: {text!r} is not a duration; use a number with s, m, h, d or w, "
            "e.g. 30m, 6h, 7d"
        )
    return dt.timedelta(seconds=sum(int(n) * _UNITS[unit] for n, unit in parts))


@dataclass(frozen=True)
class Filter:
    """Which letters an operator means; every field given must hold."""

    component: str | None = None
    reason: str | None = None
    source_topic: str | None = None
    older_than: dt.timedelta | None = None
    newer_than: dt.timedelta | None = None

    @property
    def empty(self) -> bool:
        return not any(
            v is not None
            for v in (
                self.component,
                self.reason,
                self.source_topic,
                self.older_than,
                self.newer_than,
            )
        )

    def matches(self, letter: Letter, now: dt.datetime) -> bool:
        """``reason`` is the error type, or words of the reason (any case)."""
        age = now - letter.failed_at
        if self.component is not None and letter.component != self.component:
            return False
        if self.reason is not None and not (
            letter.error_type == self.reason or self.reason.lower() in letter.reason.lower()
        ):
            return False
        if self.source_topic is not None and letter.source_topic != self.source_topic:
            return False
        if self.older_than is not None and age <= self.older_than:
            return False
        return self.newer_than is None or age < self.newer_than


def age_bucket(letter: Letter, now: dt.datetime) -> str:
    age = now - letter.failed_at
    return next((label for limit, label in AGE_BUCKETS if age < limit), OLDEST_BUCKET)


@dataclass(frozen=True)
class Counts:
    """The letters counted four ways, most first."""

    total: int
    by_component: list[tuple[str, int]]
    by_reason: list[tuple[str, int]]
    by_source_topic: list[tuple[str, int]]
    by_age: list[tuple[str, int]]


def counts(letters: Sequence[Letter], now: dt.datetime) -> Counts:
    ages = Counter(age_bucket(letter, now) for letter in letters)
    order = [label for _, label in AGE_BUCKETS] + [OLDEST_BUCKET]
    return Counts(
        total=len(letters),
        by_component=Counter(letter.component for letter in letters).most_common(),
        by_reason=Counter(letter.error_type for letter in letters).most_common(),
        by_source_topic=Counter(letter.source_topic for letter in letters).most_common(),
        by_age=[(label, ages[label]) for label in order if ages[label]],
    )
