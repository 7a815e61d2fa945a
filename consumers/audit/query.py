"""``ungebus audit CPR|PSEUDONYM``: every routing decision about one person, from the store.

Answers "who received what, when, and on which basis" with one indexed query on the audit
store (``ungebus audit-store`` keeps it), instead of reading the person's partition of
``audit.routing`` from the beginning. A CPR number becomes its pseudonym here and goes no
further: it is never printed, logged or sent to the database.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from bus.settings import Settings
from consumers.audit import sqlite_read
from consumers.audit.decisions import AuditedDecision, AuditedErasure

if TYPE_CHECKING:
    from consumers.audit.store import AuditStore

_CPR = re.compile(r"^\d{6}-?\d{4}$")
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")


class NotAPerson(ValueError):
    """The argument is neither a CPR number nor a pseudonym."""


class NoStore(RuntimeError):
    """There is no audit store to ask (or nothing in it); the message says what to run."""


def to_pseudonym(person: str, settings: Settings) -> str:
    """A CPR number becomes its pseudonym here and goes no further; a pseudonym stays."""
    if _CPR.match(person):
        from schemas.cpr import pseudonym

        return pseudonym(person, settings.pseudonym_key())
    if _PSEUDONYM.match(person):
        return person
    raise NotAPerson("give a CPR number (DDMMYY-SSSS) or a 64-hex-digit pseudonym")


def where(url: str) -> str:
    """The store, as an operator would look for it: its file, or its URL without a password."""
    if (path := sqlite_read.sqlite_path(url)) is not None:
        return str(path)
    from sqlalchemy import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def read_person(url: str, pseudonym: str) -> list[AuditedDecision]:
    """Every decision about one person in the store at ``url``, oldest first; :class:`NoStore`
    when there is no store or nothing in it. SQLite is read with the standard library (a
    quick command), anything else through SQLAlchemy."""
    path = sqlite_read.sqlite_path(url)
    if path is None:
        store = open_store(url)
        try:
            return decisions_about(store, pseudonym, url)
        finally:
            store.engine.dispose()
    if not path.exists():
        raise _missing(url)
    reader = sqlite_read.Reader(path)
    try:
        if not reader.exists():
            raise _missing(url)
        return decisions_about(reader, pseudonym, url)
    finally:
        reader.close()


def read_erasures(url: str, pseudonym: str) -> list[AuditedErasure]:
    """The person's erasures in the store at ``url``, oldest first (read like the decisions)."""
    path = sqlite_read.sqlite_path(url)
    if path is None:
        store = open_store(url)
        try:
            return store.erasures_of(pseudonym)
        finally:
            store.engine.dispose()
    reader = sqlite_read.Reader(path)
    try:
        return reader.erasures_of(pseudonym)
    finally:
        reader.close()


def _missing(url: str) -> NoStore:
    return NoStore(f"no audit store at {where(url)}: run `ungebus audit-store`")


def open_store(url: str) -> AuditStore:
    """The store at ``url``; :class:`NoStore` if it was never made (no SQLite file is created)."""
    from consumers.audit.store import AuditStore, connect

    missing = NoStore(f"no audit store at {where(url)}: run `ungebus audit-store`")
    if (path := _sqlite_file(url)) is not None and not path.exists():
        raise missing
    store = AuditStore(connect(url))
    if not store.exists():
        store.engine.dispose()
        raise missing
    return store


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def decisions_about(
    store: AuditStore | sqlite_read.Reader, pseudonym: str, url: str
) -> list[AuditedDecision]:
    """Every decision about one person, oldest first; :class:`NoStore` if the store is empty."""
    found = store.decisions_about(pseudonym)
    if not found and store.is_empty():
        raise NoStore(
            f"the audit store at {where(url)} holds no decisions yet: run `ungebus audit-store` "
            "(it reads audit.routing from its beginning)"
        )
    return found


def render(decision: AuditedDecision, erased: bool = False) -> str:
    routes = ", ".join(
        f"{r['unit']}@{r['kommunekode']} on {r['basis']['id']} ({r['basis']['citation']})"
        + (f" with consent {r['consent_id']}" if r["consent_id"] else "")
        + f" saw {len(r['fields'])} fields"
        for r in decision.routes
    )
    when = decision.decided_at.isoformat(timespec="seconds")
    head = f"{when}  {decision.event_type}  {decision.event_id}  {decision.decision.upper()}"
    mark = "\n    personal data: ERASED (the event's and its tasks' fields cannot be read)"
    return f"{head}\n    {routes or decision.reason}" + (mark if erased else "")


def render_erasure(erasure: AuditedErasure) -> str:
    when = erasure.erased_at.isoformat(timespec="seconds")
    return (
        f"{when}  ERASED by {erasure.operator} ({erasure.principal}): {erasure.reason}\n"
        f"    {erasure.keys_destroyed} data key(s) destroyed; what the bus held of this person "
        "before this moment is unreadable or deleted"
    )
