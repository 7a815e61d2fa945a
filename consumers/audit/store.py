"""The audit store (SQLAlchemy 2.x): SQLite by default, PostgreSQL given its URL.

Each decision is stored once: its deterministic id (``schemas.decision_id``) is the primary key
and a replayed or re-delivered decision is an insert that is ignored. Queries are per person:
the index on (pseudonym, decided_at) answers one person's decisions, oldest first, without
reading anyone else's; decisions of the same millisecond keep their order on the topic. The
schema is Alembic's (``consumers/audit/migrations``); the mapped class must match it (a test
checks).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, BigInteger, Engine, Index, String, Text, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from bus import sql
from bus.sql import UtcDateTime
from consumers.audit.records import AuditedDecision

# Rows per INSERT statement: under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
_ROWS_PER_STATEMENT = 1000


class Base(DeclarativeBase):
    pass


class DecisionRow(Base):
    __tablename__ = "audit_decisions"

    decision_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_pseudonym: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # Text, not String(n): a long event id must not make PostgreSQL refuse the whole batch.
    event_type: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(String(20))
    routes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    policy_version: Mapped[str] = mapped_column(Text)
    held_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    audit_offset: Mapped[int | None] = mapped_column(BigInteger)
    stored_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_audit_decisions_person", "subject_pseudonym", "decided_at"),)


def connect(url: str) -> Engine:
    """An engine for the audit store at ``url`` (SQLite or PostgreSQL)."""
    return sql.connect(url, "the audit store")


class AuditStore:
    """Routing decisions by person."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def save(self, decisions: Sequence[AuditedDecision], stored_at: dt.datetime) -> set[str]:
        """Store a batch in one transaction; known decisions change nothing. The new ids."""
        first: dict[str, dict[str, Any]] = {}
        for d in decisions:  # the first one written stays, in a batch as in the table
            first.setdefault(d.decision_id, _row(d, stored_at))
        rows = list(first.values())
        new: set[str] = set()
        with self._sessions.begin() as session:
            for start in range(0, len(rows), _ROWS_PER_STATEMENT):
                chunk = rows[start : start + _ROWS_PER_STATEMENT]
                ids = {row["decision_id"] for row in chunk}
                known = select(DecisionRow.decision_id).where(DecisionRow.decision_id.in_(ids))
                new |= ids - set(session.scalars(known))
                insert = sql.insert(self.engine)(DecisionRow).values(chunk)
                session.execute(insert.on_conflict_do_nothing())
        return new

    def decisions_about(self, pseudonym: str) -> list[AuditedDecision]:
        """Every decision about one person, oldest first."""
        query = (
            select(DecisionRow)
            .where(DecisionRow.subject_pseudonym == pseudonym)
            .order_by(DecisionRow.decided_at, DecisionRow.audit_offset, DecisionRow.decision_id)
        )
        with self._sessions() as session:
            return [_decision(row) for row in session.scalars(query)]

    def exists(self) -> bool:
        """Whether the store's table is there (a store that was never migrated is not)."""
        return inspect(self.engine).has_table(DecisionRow.__tablename__)

    def is_empty(self) -> bool:
        with self._sessions() as session:
            return session.scalar(select(DecisionRow.decision_id).limit(1)) is None


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


def _decision(row: DecisionRow) -> AuditedDecision:
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
