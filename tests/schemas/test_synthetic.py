"""The synthetic generator: deterministic, every valid payload validates, every invalid one
fails on exactly the field the manifest names."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from schemas import PARTNER_KINDS, decode, encode, field_errors, parse_partner, to_record
from schemas.cli import generate
from schemas.cpr import age_on, birth_date, passes_modulus_11
from schemas.synthetic import DEFAULT_REFERENCE_DATE, generate_payloads

KEY = b"synthetic-test-key"


def run_generate(out: Path, *args: str) -> None:
    result = CliRunner().invoke(
        generate, ["--seed", "11", "--count", "240", "--out", str(out), *args]
    )
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    run_generate(out, "--invalid-share", "0.25")
    return out


def test_same_seed_gives_byte_identical_files(generated: Path, tmp_path: Path) -> None:
    run_generate(tmp_path, "--invalid-share", "0.25")
    names = sorted(p.name for p in generated.iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([*(f"{k}.jsonl" for k in PARTNER_KINDS), "manifest.json"])
    for name in names:
        assert (generated / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_another_seed_gives_other_payloads() -> None:
    a = generate_payloads(seed=1, count=16)
    b = generate_payloads(seed=2, count=16)
    assert a.payloads != b.payloads


def test_manifest_counts(generated: Path) -> None:
    manifest = json.loads((generated / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 11 and manifest["count"] == 240
    assert manifest["reference_date"] == DEFAULT_REFERENCE_DATE.isoformat()
    assert sum(f["lines"] for f in manifest["files"].values()) == 240
    assert len(manifest["invalid"]) == 60
    assert {f["lines"] for f in manifest["files"].values()} == {30}  # round robin


def test_every_line_is_valid_or_fails_on_exactly_the_named_field(generated: Path) -> None:
    manifest = json.loads((generated / "manifest.json").read_text(encoding="utf-8"))
    intended = {(c["kind"], c["line"]): c for c in manifest["invalid"]}
    seen_codes = set()
    reference = dt.date.fromisoformat(manifest["reference_date"])
    for kind in PARTNER_KINDS:
        lines = (generated / f"{kind}.jsonl").read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            case = intended.get((kind, number))
            if case is None:
                model = parse_partner(kind, line, today=reference)
                name, record = to_record(model, KEY, "00000000-0000-4000-8000-000000000000")
                assert decode(encode(name, record)).record == record
                continue
            with pytest.raises(ValidationError) as caught:
                parse_partner(kind, line, today=reference)
            errors = field_errors(caught.value)
            assert [(e["field"], e["code"]) for e in errors] == [(case["field"], case["code"])], (
                kind,
                number,
                case,
                errors,
            )
            seen_codes.add(case["code"])
    assert len(seen_codes) >= 10  # the mix covers many kinds of mistakes


def test_synthetic_people_are_15_to_29_with_real_birth_dates_failing_modulus_11() -> None:
    batch = generate_payloads(seed=5, count=400, invalid_share=0.0)
    for kind, payloads in batch.payloads.items():
        for payload in payloads:
            cpr = payload["subject"]["cpr"]
            occurred = dt.datetime.fromisoformat(payload["occurred_at"]).date()
            assert 15 <= age_on(birth_date(cpr), occurred) <= 29, kind
            assert not passes_modulus_11(cpr)
            assert 900 <= int(cpr[-3:]) <= 999
            assert occurred < batch.reference_date


def test_reference_date_moves_all_dates() -> None:
    reference = dt.date(2030, 1, 6)
    later = generate_payloads(seed=3, count=8, invalid_share=0.0, reference_date=reference)
    for kind, payloads in later.payloads.items():
        for payload in payloads:
            assert payload["occurred_at"].startswith(("2029-", "2030-"))
            parse_partner(kind, payload, today=reference)


def test_python_function_for_benchmarks_can_pick_kinds() -> None:
    batch = generate_payloads(seed=9, count=50, invalid_share=0.0, kinds=["dropout_notice"])
    assert (
        list(batch.payloads) == ["dropout_notice"] and len(batch.payloads["dropout_notice"]) == 50
    )
    assert batch.invalid == []
