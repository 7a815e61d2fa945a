"""Audited decisions for the audit store and ``ungebus audit`` tests; no tests here."""

from __future__ import annotations

import datetime as dt
import uuid

import schemas
from consumers.audit.decisions import AuditedDecision

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


def person() -> str:
    return uuid.uuid4().hex * 2


def decision(
    pseudonym: str,
    event_id: str,
    decided_at: dt.datetime = NOW,
    outcome: str = "routed",
    task_ids: tuple[str, ...] = ("t1",),
) -> AuditedDecision:
    routes = tuple(
        {
            "unit": "youth_unit",
            "kommunekode": "161",
            "basis": {"kind": "statute", "id": "kui_12c", "citation": "KUI § 12 c"},
            "consent_id": None,
            "task_id": task_id,
            "fields": ["status"],
        }
        for task_id in task_ids
    )
    return AuditedDecision(
        decision_id=schemas.decision_id(event_id, "1", outcome, task_ids),
        subject_pseudonym=pseudonym,
        decided_at=decided_at,
        event_type="dk.ungebus.dropout_notice.v1",
        event_id=event_id,
        decision=outcome,
        routes=routes,
        reason="youth_unit@161 on kui_12c",
        policy_version="1",
        held_until=None,
    )
