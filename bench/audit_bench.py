"""``ungebus audit`` over a large audit store: the query's time for one person, and the fill.

A fresh SQLite store (migrated by its own Alembic scripts) is filled with synthetic decisions
(1,000,000 over 100,000 pseudonyms by default, a few routes each, decided over a year) through
the store's own ``save``, 10,000 a transaction; then the query ``ungebus audit`` makes
(``AuditStore.decisions_about``) is timed for 100 random people, and the whole command
(a new Python process: imports, settings, the query, the output) a few times. Benchmarks, not
tests: nothing asserts a speed. Run alone: ``.venv/bin/python -m bench audit``.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import schemas
from bus.settings import PROJECT_ROOT
from consumers.audit.decisions import AuditedDecision
from consumers.audit.migrate import migrate
from consumers.audit.store import AuditStore, connect

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
UNITS = ("youth_unit", "jobcentre", "social_services", "family_services")
PER_TRANSACTION = 10_000


def synthetic_decisions(
    count: int, people: list[str], rng: random.Random
) -> Iterator[AuditedDecision]:
    """Decisions as the router writes them, about random people, in the order decided."""
    step = dt.timedelta(days=365) / count
    for i in range(count):
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        outcome = rng.choices(("routed", "held", "denied", "duplicate"), (80, 10, 8, 2))[0]
        units = rng.sample(UNITS, rng.randint(1, 3)) if outcome == "routed" else []
        task_ids = [f"{event_id}/161/{unit}" for unit in units]
        routes = tuple(
            {
                "unit": unit,
                "kommunekode": "161",
                "basis": {"kind": "statute", "id": "kui_12c", "citation": "KUI § 12 c"},
                "consent_id": None,
                "task_id": task_id,
                "fields": ["status", "level", "programme", "left_on"],
            }
            for unit, task_id in zip(units, task_ids, strict=True)
        )
        yield AuditedDecision(
            decision_id=schemas.decision_id(event_id, "1", outcome, task_ids),
            subject_pseudonym=people[rng.randrange(len(people))],
            decided_at=START + step * i,
            event_type="dk.ungebus.dropout_notice.v2",
            event_id=event_id,
            decision=outcome,
            routes=routes,
            reason="youth_unit@161 on kui_12c (rule dropout-16-17)",
            policy_version="1",
            held_until=START + step * i + dt.timedelta(days=30) if outcome == "held" else None,
            offset=i,
        )


def fill(store: AuditStore, count: int, people: list[str], rng: random.Random) -> float:
    """Seconds to store ``count`` decisions, :data:`PER_TRANSACTION` a transaction."""
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    batch: list[AuditedDecision] = []
    for decision in synthetic_decisions(count, people, rng):
        batch.append(decision)
        if len(batch) == PER_TRANSACTION:
            store.save(batch, now)
            batch = []
    if batch:
        store.save(batch, now)
    return time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def cli_runs(url: str, var_dir: Path, pseudonym: str, runs: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of ``ungebus audit PSEUDONYM``, a new process each time.

    The CPU time (user + system of the child) says what the command costs when the other
    core is busy too, as it often is on the shared machine; the wall time what a user waits.
    """
    env = {**os.environ, "UNGEBUS_AUDIT_DATABASE_URL": url, "UNGEBUS_VAR_DIR": str(var_dir)}
    measured = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "bus", "audit", pseudonym],
            env=env,
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        measured.append((wall, cpu))
    return measured


def run(
    work: Path,
    decisions: int = 1_000_000,
    people: int = 100_000,
    queries: int = 100,
    runs: int = 5,
    seed: int = 1,
) -> dict[str, Any]:
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "audit.db"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    engine = connect(url)
    migrate(engine)
    store = AuditStore(engine)
    pseudonyms = [f"{rng.getrandbits(256):064x}" for _ in range(people)]
    fill_s = fill(store, decisions, pseudonyms, rng)
    asked = rng.sample(pseudonyms, queries)
    store.decisions_about(asked[0])  # the first query opens the connection pool
    millis, found = [], []
    for pseudonym in asked:
        started = time.perf_counter()
        found.append(len(store.decisions_about(pseudonym)))
        millis.append((time.perf_counter() - started) * 1000)
    engine.dispose()
    load = os.getloadavg()[0]
    walls, cpus = zip(*cli_runs(url, work, asked[0], runs), strict=True)
    return {
        "decisions": decisions,
        "people": people,
        "fill_s": round(fill_s, 1),
        "fill_per_s": round(decisions / fill_s),
        "db_mb": round(path.stat().st_size / 1e6, 1),
        "queries": queries,
        "decisions_per_person_p50": statistics.median(found),
        "query_p50_ms": round(statistics.median(millis), 2),
        "query_p99_ms": round(percentile(millis, 0.99), 2),
        "cli_runs": runs,
        "cli_wall_p50_s": round(statistics.median(walls), 3),
        "cli_wall_max_s": round(max(walls), 3),
        "cli_cpu_p50_s": round(statistics.median(cpus), 3),
        "load_average_1m": round(load, 2),
    }


def row(figures: dict[str, Any]) -> tuple[str, str, str]:
    """The README table's row."""
    return (
        f"`ungebus audit` over {figures['decisions']:,} decisions ({figures['people']:,} people, "
        "SQLite)",
        f"query p50 {figures['query_p50_ms']} ms, p99 {figures['query_p99_ms']} ms; the whole "
        f"command {figures['cli_wall_p50_s']} s wall, {figures['cli_cpu_p50_s']} s CPU",
        f"fill {figures['fill_s']} s ({figures['fill_per_s']:,} decisions/s); before the store: "
        "a partition scan, 2.6-4.3 s",
    )
