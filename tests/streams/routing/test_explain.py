"""`ungebus explain FILE`: the decision for a partner's JSON, naming rule and basis."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from schemas import generate_payloads, write_payloads
from streams.routing.explain import explain


def _payload(tmp_path: Path, kind: str) -> Path:
    out = tmp_path / "gen"
    write_payloads(generate_payloads(seed=7, count=40, invalid_share=0.0), out)
    line = (out / f"{kind}.jsonl").read_text().splitlines()[0]
    target = tmp_path / f"{kind}.json"
    target.write_text(line)
    return target


def test_explains_a_psychiatric_discharge_with_rule_basis_and_held_mentor(tmp_path: Path) -> None:
    file = _payload(tmp_path, "release_planning_psychiatry")
    result = CliRunner().invoke(explain, [str(file)], env={"UNGEBUS_VAR_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "HELD" in result.output
    assert "rule psychiatry.social_services" in result.output
    assert "Psykiatriloven § 13 a" in result.output
    assert "waits for consent 'discharge_mentor'" in result.output
    assert json.loads(file.read_text())["subject"]["cpr"] not in result.output


def test_a_given_consent_routes_the_held_unit(tmp_path: Path) -> None:
    file = _payload(tmp_path, "release_planning_psychiatry")
    kommunekode = json.loads(file.read_text())["subject"]["residence_kommunekode"]
    result = CliRunner().invoke(
        explain,
        [str(file), "--consent", f"discharge_mentor:jobcentre:{kommunekode}"],
        env={"UNGEBUS_VAR_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    assert "ROUTED" in result.output and "consent used: explain-discharge_mentor" in result.output


def test_invalid_file_names_the_field(tmp_path: Path) -> None:
    file = _payload(tmp_path, "dropout_notice")
    payload = json.loads(file.read_text())
    payload["institution_number"] = "12345"
    file.write_text(json.dumps(payload))
    result = CliRunner().invoke(explain, [str(file), "--kind", "dropout_notice"])
    assert result.exit_code == 1
    assert "institution_number" in result.output
