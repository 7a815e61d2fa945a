"""``ungebus audit`` from the store: one person's decisions, a CPR number never shown, and a
plain sentence when there is no store to ask."""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.exc import DataError

import schemas
from bus.cli import cli
from bus.processes import files_written
from bus.records import Received
from bus.services import AUDIT_STORE, ready_file
from consumers.audit import sqlite_read
from consumers.audit.decisions import AuditedDecision
from consumers.audit.feed import Batch, save_batch
from consumers.audit.migrate import migrate
from consumers.audit.settings import AuditSettings
from consumers.audit.store import AuditStore, connect
from schemas.synthetic import synthetic_cpr
from tests.support.audit_decisions import NOW, decision, person


@pytest.fixture
def var_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for variable in list(os.environ):
        if variable.startswith("UNGEBUS_"):
            monkeypatch.delenv(variable)
    monkeypatch.setenv("UNGEBUS_VAR_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    return tmp_path


def _store(var_dir: Path) -> AuditStore:
    engine = connect(f"sqlite:///{var_dir / 'audit.db'}")
    migrate(engine)
    return AuditStore(engine)


def test_no_store_says_what_to_run_and_makes_no_file(var_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", person()])
    assert result.exit_code == 1
    assert f"no audit store at {var_dir / 'audit.db'}: run `ungebus audit-store`" in result.output
    assert not (var_dir / "audit.db").exists()


def test_an_empty_store_says_so(var_dir: Path) -> None:
    _store(var_dir).engine.dispose()
    result = CliRunner().invoke(cli, ["audit", person()])
    assert result.exit_code == 1
    assert "holds no decisions yet: run `ungebus audit-store`" in result.output


def test_a_cpr_number_finds_its_pseudonyms_decisions_and_is_never_printed(var_dir: Path) -> None:
    cpr = synthetic_cpr(random.Random(7), dt.date(2008, 5, 1))
    someone = schemas.pseudonym(cpr, AuditSettings().pseudonym_key())
    store = _store(var_dir)
    later = decision(someone, "e2", NOW + dt.timedelta(days=1), outcome="denied", task_ids=())
    store.save([later, decision(someone, "e1"), decision(person(), "e3")], stored_at=NOW)
    store.engine.dispose()
    result = CliRunner().invoke(cli, ["audit", cpr])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[2] for line in lines[:-1:2]] == ["e1", "e2"]
    assert "ROUTED" in lines[0] and "youth_unit@161 on kui_12c (KUI § 12 c)" in lines[1]
    assert lines[-1] == f"2 decision(s) about pseudonym {someone[:12]}…"
    assert cpr not in result.output and cpr.replace("-", "") not in result.output
    # Nobody's decisions: a count of none, not an error.
    nobody = CliRunner().invoke(cli, ["audit", person()])
    assert nobody.exit_code == 0 and nobody.output.startswith("0 decision(s)")


def test_the_quick_sqlite_reader_reads_what_sqlalchemy_reads(var_dir: Path) -> None:
    """``ungebus audit`` reads a SQLite store with the standard library: the same decisions,
    in the same order, as the store's own SQLAlchemy query."""
    store = _store(var_dir)
    someone = person()
    same_ms = NOW + dt.timedelta(hours=1)
    kept = [
        decision(someone, "e3", same_ms, outcome="held", task_ids=()),
        decision(someone, "e1"),
        replace(decision(someone, "e2", same_ms, task_ids=("t2", "t3")), offset=7),
        replace(decision(someone, "e4", same_ms), offset=3),
        decision(person(), "e9"),
    ]
    store.save(kept, stored_at=NOW)
    expected = store.decisions_about(someone)
    store.engine.dispose()
    reader = sqlite_read.Reader(var_dir / "audit.db")
    try:
        assert reader.decisions_about(someone) == expected
        assert [d.event_id for d in expected][:1] == ["e1"] and len(expected) == 4
    finally:
        reader.close()
    assert sqlite_read.sqlite_path(f"sqlite:///{var_dir / 'audit.db'}") == var_dir / "audit.db"
    assert sqlite_read.sqlite_path("postgresql+psycopg://u@h/db") is None
    assert sqlite_read.sqlite_path("sqlite://") is None


def test_neither_cpr_nor_pseudonym_is_refused(var_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "Test Testesen"])
    assert result.exit_code == 2
    assert "CPR number (DDMMYY-SSSS) or a 64-hex-digit pseudonym" in result.output


class _RefusesNul(AuditStore):
    """PostgreSQL's answer to a NUL character in text, on SQLite."""

    def save(self, decisions: Sequence[AuditedDecision], stored_at: dt.datetime) -> set[str]:
        if any("\x00" in d.reason for d in decisions):
            raise DataError("INSERT", {}, ValueError("text cannot contain NUL"))
        return super().save(decisions, stored_at)


def test_a_decision_the_database_refuses_is_dead_lettered_and_the_rest_stored(
    var_dir: Path,
) -> None:
    store = _RefusesNul(_store(var_dir).engine)
    someone = person()
    good, bad = decision(someone, "e1"), decision(someone, "e2")
    bad = replace(bad, reason="nul\x00")
    batch = Batch(decisions=[(0, good), (1, bad)])
    read = [Received("audit.routing", 0, offset, None, b"", []) for offset in (10, 11)]
    assert save_batch(store, batch, read, NOW) == {good.decision_id}
    assert [i for i, _ in batch.decisions] == [0]
    ((index, rejected),) = batch.rejected
    assert index == 1 and rejected.error_type == "store:DataError"
    assert store.decisions_about(someone) == [good]


def test_the_ready_check_ignores_a_file_left_by_an_earlier_run(tmp_path: Path) -> None:
    ready = tmp_path / "audit-store"
    ready.write_text("1\n")
    os.utime(ready, (time.time() - 60, time.time() - 60))
    check = files_written([ready], after=time.time())
    assert not check()
    ready.write_text("2\n")
    assert check()


def test_the_supervisor_and_compose_wait_for_the_file_the_audit_store_writes() -> None:
    (process,) = AUDIT_STORE.ready_processes
    assert AuditSettings(var_dir=Path("/v")).ready_file == ready_file(Path("/v"), process)


def test_a_database_it_cannot_use_is_named_not_a_traceback(
    var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNGEBUS_AUDIT_DATABASE_URL", "mysql://audit:secret-pw@db.example/audit")
    result = CliRunner().invoke(cli, ["audit", person()])
    assert result.exit_code == 1
    assert "the audit store supports sqlite and postgresql, not mysql" in result.output
    assert "secret-pw" not in result.output
