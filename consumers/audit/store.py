"""The audit store (SQLAlchemy 2.x): SQLite by default, PostgreSQL given its URL.

Each decision is stored once: its deterministic id (``schemas.decision_id``) is the primary key
and a replayed or re-delivered decision is an insert that is ignored. Queries are per person:
the index on (pseudonym, decided_at) answers one person's decisions, oldest first, without
reading anyone else's; decisions of the same millisecond keep their order on the topic. The
schema is Alembic's (``consumers/audit/migrations``); the table here must match it (a test
checks). SQLAlchemy Core, not the ORM: an append-only log needs no identity map, and
``ungebus audit`` starts quicker without it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Engine,
    Index,
    MetaData,
    Row,
    String,
    Table,
    Text,
    inspect,
    select,
)

from bus import sql
from bus.sql import UtcDateTime
from consumers.audit.decisions import AuditedDecision, AuditedErasure

# Ids per "which of these are known" query: well under any database's bound-parameter limit.
_IDS_PER_QUERY = 1000

metadata = MetaData()
decisions = Table(
    "audit_decisions",
    metadata,
    Column("decision_id", String(36), primary_key=True),
    Column("subject_pseudonym", String(64), nullable=False),
    Column("decided_at", UtcDateTime(), nullable=False),
    # Text, not String(n): a long event id must not make PostgreSQL refuse the whole batch.
    Column("event_type", Text(), nullable=False),
    Column("event_id", Text(), nullable=False),
    Column("decision", String(20), nullable=False),
    Column("routes", JSON(), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("policy_version", Text(), nullable=False),
    Column("held_until", UtcDateTime(), nullable=True),
    Column("audit_offset", BigInteger(), nullable=True),
    Column("stored_at", UtcDateTime(), nullable=False),
    Index("ix_audit_decisions_person", "subject_pseudonym", "decided_at"),
)
_ORDER = (decisions.c.decided_at, decisions.c.audit_offset, decisions.c.decision_id)
# Who was erased, when, why and by whom (``erasures``): the erasure's own audit record.
erasures = Table(
    "audit_erasures",
    metadata,
    Column("subject_pseudonym", String(64), primary_key=True),
    Column("erased_at", UtcDateTime(), primary_key=True),
    Column("reason", Text(), nullable=False),
    Column("principal", Text(), nullable=False),
    Column("operator", Text(), nullable=False),
    Column("keys_destroyed", BigInteger(), nullable=False),
)


def connect(url: str) -> Engine:
    """An engine for the audit store at ``url`` (SQLite or PostgreSQL)."""
    return sql.connect(url, "the audit store")


class AuditStore:
    """Routing decisions by person."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @cached_property
    def _insert_or_ignore(self) -> Any:
        """Built on first write: the dialects it needs are not imported by a reader."""
        return sql.insert(self.engine)(decisions).on_conflict_do_nothing()

    def save(self, batch: Sequence[AuditedDecision], stored_at: dt.datetime) -> set[str]:
        """Store a batch in one transaction; known decisions change nothing. The new ids."""
        first: dict[str, dict[str, Any]] = {}
        for d in batch:  # the first one written stays, in a batch as in the table
            first.setdefault(d.decision_id, _row(d, stored_at))
        rows = list(first.values())
        new: set[str] = set()
        with self.engine.begin() as connection:
            for start in range(0, len(rows), _IDS_PER_QUERY):
                chunk = rows[start : start + _IDS_PER_QUERY]
                ids = {row["decision_id"] for row in chunk}
                known = select(decisions.c.decision_id).where(decisions.c.decision_id.in_(ids))
                new |= ids - set(connection.scalars(known))
                connection.execute(self._insert_or_ignore, chunk)  # executemany: one compile
        return new

    def save_erasures(self, batch: Sequence[AuditedErasure]) -> None:
        """Store erasures; one read again changes nothing."""
        if not batch:
            return
        rows = {(e.subject_pseudonym, e.erased_at): _erasure_row(e) for e in batch}
        insert = sql.insert(self.engine)(erasures).on_conflict_do_nothing()
        with self.engine.begin() as connection:
            connection.execute(insert, list(rows.values()))

    def erasures_of(self, pseudonym: str) -> list[AuditedErasure]:
        """The person's erasures, oldest first."""
        query = (
            select(erasures)
            .where(erasures.c.subject_pseudonym == pseudonym)
            .order_by(erasures.c.erased_at)
        )
        with self.engine.connect() as connection:
            return [
                AuditedErasure(
                    row.subject_pseudonym,
                    row.erased_at,
                    row.reason,
                    row.principal,
                    row.operator,
                    row.keys_destroyed,
                )
                for row in connection.execute(query)
            ]

    def decisions_about(self, pseudonym: str) -> list[AuditedDecision]:
        """Every decision about one person, oldest first."""
        query = (
            select(decisions).where(decisions.c.subject_pseudonym == pseudonym).order_by(*_ORDER)
        )
        with self.engine.connect() as connection:
            return [_decision(row) for row in connection.execute(query)]

    def exists(self) -> bool:
        """Whether the store's table is there (a store that was never migrated is not)."""
        return inspect(self.engine).has_table(decisions.name)

    def is_empty(self) -> bool:
        with self.engine.connect() as connection:
            return connection.scalar(select(decisions.c.decision_id).limit(1)) is None


def _row(d: AuditedDecision, stored_at: dt.datetime) -> dict[str, Any]:
    return {
        "decision_id": d.decision_id,
        "subject_pseudonym": d.subject_pseudonym,
        "decided_at": d.decided_at,
        "event_type": d.event_type,
        "event_id": d.event_id,
        "decision": d.decision,
        "routes": [dict(route) for route in d.routes],
        "reason": d.reason,
        "policy_version": d.policy_version,
        "held_until": d.held_until,
        "audit_offset": d.offset,
        "stored_at": stored_at,
    }


def _erasure_row(e: AuditedErasure) -> dict[str, Any]:
    return {
        "subject_pseudonym": e.subject_pseudonym,
        "erased_at": e.erased_at,
        "reason": e.reason,
        "principal": e.principal,
        "operator": e.operator,
        "keys_destroyed": e.keys_destroyed,
    }


def _decision(row: Row[Any]) -> AuditedDecision:
    return AuditedDecision(
        decision_id=row.decision_id,
        subject_pseudonym=row.subject_pseudonym,
        decided_at=row.decided_at,
        event_type=row.event_type,
        event_id=row.event_id,
        decision=row.decision,
        routes=tuple(row.routes),
        reason=row.reason,
        policy_version=row.policy_version,
        held_until=row.held_until,
        offset=row.audit_offset,
    )
