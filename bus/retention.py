"""The retention table: how long each data class is kept and why (``streams/retention.toml``).

The table is the data protection officer's file, beside the routing policy; this module reads
it, refuses a bad entry with the field and the reason, and answers the two questions the bus
asks of it: which class a topic belongs to (so ``Topics.catalogue`` takes each topic's
``retention.ms`` from the table), and how long a class is kept (so the inbox purges its closed
tasks). It lives in ``bus/`` because the topic catalogue and the inbox both need it and
components never import each other; the file itself sits with the policy it belongs beside.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_RETENTION = Path(__file__).resolve().parent.parent / "streams" / "retention.toml"
UNTIL_ERASED = "until erased"
DAY_MS = 24 * 60 * 60 * 1000

_KLE_DAYS = re.compile(r"P([1-9][0-9]{0,5})D")
_PLACEHOLDER = re.compile(r"<([a-z]+)>")
_TOPIC_PATTERN = re.compile(r"[a-z0-9<>_-]+(\.[a-z0-9<>_-]+)*")
_FIELDS = {"name": str, "retention": str, "reason": str, "topics": list, "stores": list}


class RetentionError(ValueError):
    """The retention table cannot be used: which entry, which field, and why."""


@dataclass(frozen=True)
class DataClass:
    """One data class: its retention (``None``: until the person is erased), the reason, the
    topics it covers (patterns such as ``tasks.<kommunekode>.<unit>``) and what else holds it."""

    name: str
    retention: str  # as written: "P365D" or "until erased"
    days: int | None
    reason: str
    topics: tuple[str, ...]
    stores: tuple[str, ...]

    @property
    def retention_ms(self) -> int | None:
        """The topic config ``retention.ms``; None for a class kept until erased."""
        return None if self.days is None else self.days * DAY_MS

    @property
    def period(self) -> dt.timedelta | None:
        return None if self.days is None else dt.timedelta(days=self.days)

    def covers(self, topic: str) -> bool:
        """Whether ``topic`` (without the deployment's prefix) is one of this class's."""
        return any(_pattern(p).fullmatch(topic) for p in self.topics)


@dataclass(frozen=True)
class RetentionTable:
    classes: tuple[DataClass, ...]
    source: str = "retention table"

    def data_class(self, name: str) -> DataClass:
        for data_class in self.classes:
            if data_class.name == name:
                return data_class
        raise RetentionError(f"{self.source}: no data class named {name!r}")

    def for_topic(self, topic: str, prefix: str = "") -> DataClass:
        """The one class that covers ``topic``; an error names a topic in none or in several."""
        bare = topic.removeprefix(prefix)
        found = [c for c in self.classes if c.covers(bare)]
        if len(found) != 1:
            which = "no data class" if not found else f"{len(found)} data classes"
            listed = "" if not found else f" ({', '.join(c.name for c in found)})"
            raise RetentionError(
                f"{self.source}: topic {bare!r} is in {which}{listed}; each topic must be in "
                "exactly one"
            )
        return found[0]


def _pattern(topic: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(topic)  # literal, name, literal, name, ...
    regex = "".join(re.escape(p) if i % 2 == 0 else "[^.]+" for i, p in enumerate(parts))
    return re.compile(regex)


def parse_retention(value: str) -> int | None:
    """Days from KLE notation (``P365D``); None for ``until erased``."""
    if value == UNTIL_ERASED:
        return None
    match = _KLE_DAYS.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a retention in days in KLE notation (P<days>D, e.g. P365D "
            f"or P1825D) nor {UNTIL_ERASED!r}"
        )
    return int(match.group(1))


def parse_table(document: dict[str, Any], source: str = "retention table") -> RetentionTable:
    """The table from a parsed TOML document; every bad entry is named in one error."""
    unknown = sorted(set(document) - {"class"})
    if unknown:
        raise RetentionError(f"{source}: unknown top-level key(s) {unknown}: only [[class]]")
    entries = document.get("class")
    if not isinstance(entries, list) or not entries:
        raise RetentionError(f"{source}: no [[class]] entries")
    problems: list[str] = []
    classes: list[DataClass] = []
    for index, entry in enumerate(entries, start=1):
        where = f"class {index}" + (
            f" ({entry['name']!r})" if isinstance(entry, dict) and "name" in entry else ""
        )
        errors = list(_entry_errors(entry))
        problems += [f"{where}: {e}" for e in errors]
        if not errors:
            classes.append(_data_class(entry))
    names = [c.name for c in classes]
    problems += [f"class {n!r}: name: used more than once" for n in sorted(set(names))
                 if names.count(n) > 1]  # fmt: skip
    topics = [t for c in classes for t in c.topics]
    problems += [f"topic {t!r}: listed in more than one class" for t in sorted(set(topics))
                 if topics.count(t) > 1]  # fmt: skip
    if problems:
        raise RetentionError(f"{source}: " + "; ".join(problems))
    return RetentionTable(tuple(classes), source)


def _entry_errors(entry: Any) -> Iterable[str]:
    if not isinstance(entry, dict):
        yield "not a table of name, retention, reason, topics, stores"
        return
    for field in sorted(set(entry) - set(_FIELDS)):
        yield f"{field}: unknown field (a class has {', '.join(_FIELDS)})"
    for field, kind in _FIELDS.items():
        if field not in entry:
            yield f"{field}: missing"
        elif not isinstance(entry[field], kind):
            yield f"{field}: must be a {'list of strings' if kind is list else 'string'}"
        elif kind is str and not entry[field].strip():
            yield f"{field}: empty"
        elif kind is list and not all(isinstance(i, str) and i.strip() for i in entry[field]):
            yield f"{field}: must be a list of non-empty strings"
    if isinstance(entry.get("retention"), str):
        try:
            parse_retention(entry["retention"])
        except ValueError as exc:
            yield f"retention: {exc}"
    for topic in entry.get("topics") or ():
        if isinstance(topic, str) and not _TOPIC_PATTERN.fullmatch(topic):
            yield f"topics: {topic!r} is not a topic name (placeholders as <kommunekode>)"


def _data_class(entry: dict[str, Any]) -> DataClass:
    return DataClass(
        name=entry["name"].strip(),
        retention=entry["retention"],
        days=parse_retention(entry["retention"]),
        reason=" ".join(entry["reason"].split()),
        topics=tuple(entry["topics"]),
        stores=tuple(entry["stores"]),
    )


def load_retention(path: Path = DEFAULT_RETENTION) -> RetentionTable:
    """The table in ``path`` (the DPO's ``streams/retention.toml`` by default)."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RetentionError(f"cannot read the retention table {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RetentionError(f"{path}: not valid TOML: {exc}") from exc
    return parse_table(document, str(path))


@functools.cache
def default_retention() -> RetentionTable:
    """The deployment's table, read once per process."""
    return load_retention()


def markdown_table(table: RetentionTable) -> str:
    """The table as the README shows it (a test holds the README to this)."""
    lines = ["| data class | kept | why | topics | also in |", "|---|---|---|---|---|"]
    for c in table.classes:
        topics = ", ".join(f"`{t}`" for t in c.topics) or "—"
        stores = "; ".join(c.stores) or "—"
        cells = (c.name, c.retention, c.reason, topics, stores)
        lines.append("| " + " | ".join(text.replace("|", "\\|") for text in cells) + " |")
    return "\n".join(lines) + "\n"
