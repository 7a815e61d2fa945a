"""The audit bench measures what ``ungebus audit`` does: a filled store, people who are in it."""

from __future__ import annotations

from pathlib import Path

from bench import audit_bench


def test_a_small_run_fills_the_store_and_finds_the_people_it_asks_about(tmp_path: Path) -> None:
    figures = audit_bench.run(tmp_path, decisions=600, people=20, queries=10, runs=1)
    assert figures["decisions"] == 600 and figures["queries"] == 10
    assert figures["decisions_per_person_p50"] > 0  # the query found the people's decisions
    assert len(audit_bench.row(figures)) == 3
