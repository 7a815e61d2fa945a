"""The contract check (compatibility, pinned ids, lock, docs) and the registry export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from click.testing import CliRunner

import schemas
from schemas.catalogue import PACKAGE_DIR, CatalogueError, catalogue, load_catalogue
from schemas.cli import schemas_group
from schemas.compat import check, lock, registry_import


@pytest.fixture
def copy_dir(tmp_path: Path) -> Path:
    """A writable copy of the committed contracts, to break on purpose."""
    target = tmp_path / "schemas"
    target.mkdir()
    shutil.copytree(PACKAGE_DIR / "avsc", target / "avsc")
    for name in ("catalogue.json", "catalogue.lock.json"):
        shutil.copy(PACKAGE_DIR / name, target / name)
    return target


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def add_dropout_v3(directory: Path, extra_field: dict[str, Any]) -> None:
    v2 = read(directory / "avsc" / "dropout_notice.v2.avsc")
    v2["fields"].append(extra_field)
    write(directory / "avsc" / "dropout_notice.v3.avsc", v2)
    pins = read(directory / "catalogue.json")
    pins["schemas"].append({"name": "dropout_notice", "version": 3, "id": 1103})
    write(directory / "catalogue.json", pins)


def run_check(directory: Path) -> tuple[int, str]:
    result = CliRunner().invoke(schemas_group, ["check", "--dir", str(directory)])
    return result.exit_code, result.output


def test_committed_contracts_pass_the_check() -> None:
    assert check() == []
    code, output = run_check(PACKAGE_DIR)
    assert code == 0 and "schema check ok" in output


def test_incompatible_new_version_fails_readably(copy_dir: Path) -> None:
    add_dropout_v3(copy_dir, {"name": "school_year", "type": "int", "doc": "no default"})
    problems = [str(p) for p in check(copy_dir)]
    assert any(
        "dropout_notice v3 (id 1103): cannot read v1 records (not backward compatible)" in p
        and "school_year" in p
        for p in problems
    ), problems
    assert any("cannot read v2 records" in p for p in problems)
    code, output = run_check(copy_dir)
    assert code == 1
    assert "schema check FAILED" in output and "school_year" in output


def test_compatible_new_version_only_needs_locking(copy_dir: Path) -> None:
    field = {"name": "school_year", "type": ["null", "int"], "default": None, "doc": "Year."}
    add_dropout_v3(copy_dir, field)
    problems = [str(p) for p in check(copy_dir)]
    assert problems == [
        "dropout_notice v3 (id 1103): not in catalogue.lock.json; "
        "run `ungebus schemas lock` once it is final"
    ]
    assert [e["id"] for e in lock(copy_dir)] == [1103]
    assert check(copy_dir) == []
    assert lock(copy_dir) == []  # append-only: nothing new the second time


def test_lock_refuses_an_incompatible_version(copy_dir: Path) -> None:
    add_dropout_v3(copy_dir, {"name": "school_year", "type": "int", "doc": "no default"})
    with pytest.raises(CatalogueError, match="not backward compatible"):
        lock(copy_dir)


def test_editing_a_released_version_is_caught(copy_dir: Path) -> None:
    path = copy_dir / "avsc" / "dropout_notice.v1.avsc"
    v1 = read(path)
    v1["fields"][2]["doc"] = "edited after release"
    write(path, v1)
    problems = [str(p) for p in check(copy_dir)]
    assert problems == [
        "dropout_notice v1: schema was edited after release (fingerprint differs from the "
        "lock); revert it and add a new version instead"
    ]


def test_editing_a_shared_type_is_caught_in_every_version_using_it(copy_dir: Path) -> None:
    path = copy_dir / "avsc" / "shared" / "unit.v1.avsc"
    unit = read(path)
    unit["symbols"].append("police")
    write(path, unit)
    edited = {str(p).split(":")[0] for p in check(copy_dir)}
    assert {"routed_task v1", "consent_granted v1", "routing_decision v1"} <= edited


def test_changing_a_pinned_id_is_caught(copy_dir: Path) -> None:
    pins = read(copy_dir / "catalogue.json")
    pins["schemas"][0]["id"] = 1199
    write(copy_dir / "catalogue.json", pins)
    assert any("pinned id changed from 1101 to 1199" in str(p) for p in check(copy_dir))


def test_duplicate_ids_are_caught(copy_dir: Path) -> None:
    pins = read(copy_dir / "catalogue.json")
    pins["schemas"][1]["id"] = pins["schemas"][0]["id"]
    write(copy_dir / "catalogue.json", pins)
    problems = [str(p) for p in check(copy_dir)]
    assert problems == [
        "catalogue: schema id 1101 is pinned twice: dropout_notice v1 and dropout_notice v2"
    ]


def test_unpinned_schema_file_and_missing_doc_are_caught(copy_dir: Path) -> None:
    v1 = read(copy_dir / "avsc" / "handover.v1.avsc")
    write(copy_dir / "avsc" / "stray.v1.avsc", v1)
    del v1["fields"][1]["doc"]
    write(copy_dir / "avsc" / "handover.v1.avsc", v1)
    problems = [str(p) for p in check(copy_dir)]
    assert "stray.v1.avsc: schema file has no pinned id in catalogue.json" in problems
    assert "handover v1 (id 1301): field origin has no doc" in problems


def test_zero_byte_array_items_are_caught(copy_dir: Path) -> None:
    field = {"name": "ticks", "type": {"type": "array", "items": "null"}, "default": [], "doc": "x"}
    add_dropout_v3(copy_dir, field)
    assert any("field ticks: items can be zero bytes" in str(p) for p in check(copy_dir))


def test_catalogue_api() -> None:
    assert set(schemas.names()) == {
        "dropout_notice", "release_planning", "handover", "school_absence_signal",
        "consent_granted", "consent_withdrawn", "routed_task", "task_taken_over",
        "task_escalated", "routing_decision", "dead_letter", "handover_status", "operator_action",
        "erasure",
    }  # fmt: skip
    sv = schemas.schema("dropout_notice", 1)
    assert (sv.schema_id, sv.full_name) == (1101, "dk.ungebus.DropoutNotice")
    assert schemas.parsed_schema("dropout_notice")["name"] == "dk.ungebus.DropoutNotice"
    assert load_catalogue().by_id.keys() == catalogue().by_id.keys()


def test_routing_decision_v2_is_compatible_both_ways() -> None:
    """v2 reads v1 records (``schemas check``) and a v1 reader reads v2 records: the router
    may be upgraded before the audit store and the dev stack that read its decisions."""
    v1, v2 = (schemas.schema("routing_decision", v) for v in (1, 2))
    assert (v1.schema_id, v2.schema_id) == (3401, 3402)
    checker = ReaderWriterCompatibilityChecker()
    for reader, writer in ((v2, v1), (v1, v2)):
        result = checker.get_compatibility(
            avro.schema.parse(reader.text), avro.schema.parse(writer.text)
        )
        assert result.compatibility is SchemaCompatibilityType.compatible, result.messages
    hold = schemas.parsed_schema("routing_decision", 2)["fields"][-2]["type"]["items"]
    assert [f["name"] for f in hold["fields"]] == [
        "rule_id", "purpose", "unit", "kommunekode", "until",
    ]  # fmt: skip


def test_every_field_is_documented_and_in_the_namespace() -> None:
    for sv in catalogue().versions:
        assert sv.schema["namespace"] == "dk.ungebus"
        assert "x-uses" not in sv.text


def test_kommunekoder_mapping() -> None:
    assert schemas.KOMMUNEKODER["161"] == "Glostrup"
    assert len(schemas.KOMMUNEKODER) == 10
    with pytest.raises(TypeError):
        schemas.KOMMUNEKODER["101"] = "København"  # type: ignore[index]


def test_export_is_a_registry_import(tmp_path: Path) -> None:
    out = tmp_path / "registry.json"
    result = CliRunner().invoke(schemas_group, ["export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    document = read(out)
    assert document == json.loads(json.dumps(registry_import(catalogue())))
    entries = {(e["subject"], e["version"]): e for e in document["schemas"]}
    entry = entries[("dk.ungebus.DropoutNotice", 2)]
    assert entry["id"] == 1102 and entry["schemaType"] == "AVRO"
    assert json.loads(entry["schema"])["name"] == "DropoutNotice"
    assert len(entries) == len(catalogue().versions)


def test_export_refuses_a_failing_catalogue(copy_dir: Path, tmp_path: Path) -> None:
    add_dropout_v3(copy_dir, {"name": "school_year", "type": "int", "doc": "no default"})
    out = tmp_path / "registry.json"
    result = CliRunner().invoke(
        schemas_group, ["export", "--out", str(out), "--dir", str(copy_dir)]
    )
    assert result.exit_code == 1 and not out.exists()
    assert "not backward compatible" in result.output
