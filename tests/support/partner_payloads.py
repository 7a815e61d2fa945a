"""Partner payloads for the connector tests (unit and integration); no tests here.

Synthetic payloads dated today, a partners file whose partners may send exactly those
payloads, and the same payloads as a CSV export.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bus.partners import SOURCES, Partner, render_partner, token_sha256
from schemas import PARTNER_KINDS, generate_payloads

if TYPE_CHECKING:
    from streams.routing.decide import Route

TODAY = dt.datetime.now(dt.UTC).date()


def payloads(seed: int = 7, per_kind: int = 2) -> dict[str, list[dict[str, Any]]]:
    """Valid synthetic payloads, ``per_kind`` of every partner kind, dated before today."""
    batch = generate_payloads(
        seed=seed, count=per_kind * len(PARTNER_KINDS), invalid_share=0.0, reference_date=TODAY
    )
    return batch.payloads


def source_of(kind: str, payload: dict[str, Any]) -> str:
    source_kind, field = SOURCES[kind]
    return f"{source_kind}:{payload[field]}"


def write_partners(
    path: Path, by_kind: dict[str, list[dict[str, Any]]], **extra_certs: list[str]
) -> dict[str, str]:
    """A partners file: partner ``p-<kind>`` may send ``kind`` for the sources of its payloads.

    Returns name -> bearer token. ``extra_certs`` adds certificate fingerprints by partner.
    """
    tokens, tables = {}, []
    for kind, items in by_kind.items():
        name = f"p-{kind.replace('_', '-')}"
        tokens[name] = secrets.token_urlsafe(16)
        tables.append(
            render_partner(
                name,
                [kind],
                sorted({source_of(kind, p) for p in items}),
                token_hash=token_sha256(tokens[name]),
                cert_fingerprints=extra_certs.get(name, []),
            )
        )
    path.write_text("\n".join(tables))
    return tokens


def partner_name(kind: str) -> str:
    return f"p-{kind.replace('_', '-')}"


def partner_for(kind: str, sources: list[str]) -> Partner:
    source_kind = SOURCES[kind][0]
    return Partner(
        partner_name(kind), frozenset([kind]), frozenset((source_kind, s) for s in sources)
    )


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """A payload as CSV cells, following the documented layout."""
    if isinstance(value, dict):
        cells: dict[str, str] = {}
        for key, item in value.items():
            cells.update(flatten(item, f"{prefix}{key}."))
        return cells
    path = prefix.rstrip(".")
    if isinstance(value, list):
        if all(not isinstance(item, dict) for item in value):
            return {path: "|".join(map(str, value))}
        cells = {}
        for i, item in enumerate(value):
            cells.update(flatten(item, f"{prefix}{i}."))
        return cells
    if isinstance(value, bool):
        return {path: "true" if value else "false"}
    return {path: "" if value is None else str(value)}


def to_csv(items: list[dict[str, Any]], delimiter: str = ",") -> str:
    rows = [flatten(item) for item in items]
    header = sorted({column for row in rows for column in row})
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    return out.getvalue()


def route_in_glostrup(
    pseudonym_key: bytes, kind: str, payload: dict[str, Any]
) -> tuple[Route, dict[str, Any]]:
    """The route the shipped policy gives ``payload`` in Glostrup (161), and the record the
    connector makes of it (the end-to-end tests follow that task through the bus)."""
    import schemas
    from streams.routing.consent import ConsentState
    from streams.routing.decide import InboundEvent, decide
    from streams.routing.policy import load_policy

    model = schemas.parse_partner(kind, payload, today=dt.date.today())
    name, record = schemas.to_record(model, pseudonym_key, payload["event_id"])
    decision = decide(InboundEvent(name, record), ConsentState(), load_policy(), model.occurred_at)
    return next(r for r in decision.routes if r.kommunekode == "161"), record
