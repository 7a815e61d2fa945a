"""The contract check: what must hold before a schema change may be merged.

- every version of a subject is backward compatible with all earlier ones (the newest reader
  reads every older writer), per Apache avro's ReaderWriterCompatibilityChecker;
- pinned ids are unique and stable: the committed lock pins (name, version, id, fingerprint)
  of everything released, so an edited old version or a changed id is caught;
- every field says what it means (``doc``), every schema file is catalogued, versions are
  1..n, and no array or map item can encode to zero bytes (the decoder's guard needs that).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from fastavro import parse_schema

from schemas.catalogue import (
    AVSC_DIR,
    LOCK_FILE,
    PACKAGE_DIR,
    Catalogue,
    CatalogueError,
    SchemaVersion,
    load_catalogue,
    named_types,
    read_json,
)
from schemas.domain import EventType
from schemas.guard import min_size


@dataclass(frozen=True)
class Problem:
    """One reason the check fails, readable without the code."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def check(directory: Path = PACKAGE_DIR) -> list[Problem]:
    """Every problem with the committed contracts in ``directory``; empty when all is well."""
    try:
        cat = load_catalogue(directory)
    except CatalogueError as exc:
        return [Problem("catalogue", str(exc))]
    problems = [*_check_files(directory, cat), *_check_lock(directory, cat)]
    for sv in cat.versions:
        problems += _check_schema(sv)
    problems += _check_compatibility(cat)
    return problems


def _label(sv: SchemaVersion) -> str:
    return f"{sv.name} v{sv.version} (id {sv.schema_id})"


def _check_files(directory: Path, cat: Catalogue) -> list[Problem]:
    problems = []
    pinned = {f"{sv.name}.v{sv.version}.avsc" for sv in cat.versions}
    for path in sorted((directory / AVSC_DIR).glob("*.avsc")):
        if path.name not in pinned:
            problems.append(Problem(path.name, "schema file has no pinned id in catalogue.json"))
    by_name: dict[str, list[SchemaVersion]] = defaultdict(list)
    for sv in cat.versions:
        by_name[sv.name].append(sv)
    for name, versions in by_name.items():
        numbers = sorted(sv.version for sv in versions)
        if numbers != list(range(1, len(numbers) + 1)):
            problems.append(Problem(name, f"versions must be 1..n without gaps, got {numbers}"))
        full_names = {sv.full_name for sv in versions}
        if len(full_names) > 1:
            problems.append(Problem(name, f"record name changed between versions: {full_names}"))
        if name.upper() not in EventType.__members__:
            problems.append(Problem(name, "no EventType constant in schemas/domain.py"))
    return problems


def _check_schema(sv: SchemaVersion) -> list[Problem]:
    problems = []
    try:
        parse_schema(dict(sv.schema))
        avro.schema.parse(sv.text)
    except Exception as exc:  # both parsers raise their own exception types
        return [Problem(_label(sv), f"not a valid Avro schema: {exc}")]
    named = named_types(sv.schema)
    for path, node in _walk_fields(sv.schema, ""):
        if not str(node.get("doc", "")).strip():
            problems.append(Problem(_label(sv), f"field {path} has no doc"))
        for item in _collection_items(node["type"]):
            if min_size(item, named) == 0:
                problems.append(Problem(_label(sv), f"field {path}: items can be zero bytes"))
    return problems


def _walk_fields(node: Any, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """(dotted path, field) of every field, including fields of nested and item records."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, list):
        for branch in node:
            found += _walk_fields(branch, prefix)
    elif isinstance(node, dict):
        kind = node.get("type")
        if kind in ("record", "error"):
            for f in node["fields"]:
                path = f"{prefix}{f['name']}"
                found.append((path, f))
                found += _walk_fields(f["type"], f"{path}.")
        elif kind == "array":
            found += _walk_fields(node["items"], prefix)
        elif kind == "map":
            found += _walk_fields(node["values"], prefix)
    return found


def _collection_items(node: Any) -> list[Any]:
    if isinstance(node, list):
        return [item for branch in node for item in _collection_items(branch)]
    if isinstance(node, dict):
        if node.get("type") == "array":
            return [node["items"]]
        if node.get("type") == "map":
            return [node["values"]]
    return []


def _check_compatibility(cat: Catalogue) -> list[Problem]:
    problems = []
    by_name: dict[str, list[SchemaVersion]] = defaultdict(list)
    for sv in cat.versions:
        by_name[sv.name].append(sv)
    for versions in by_name.values():
        ordered = sorted(versions, key=lambda sv: sv.version)
        for i, reader in enumerate(ordered):
            for writer in ordered[:i]:
                problems += _compatible(reader, writer)
    return problems


def _compatible(reader: SchemaVersion, writer: SchemaVersion) -> list[Problem]:
    try:
        result = ReaderWriterCompatibilityChecker().get_compatibility(
            avro.schema.parse(reader.text), avro.schema.parse(writer.text)
        )
    except Exception as exc:  # an unparsable schema is reported by _check_schema
        return [Problem(_label(reader), f"cannot compare with v{writer.version}: {exc}")]
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = sorted({_INCOMPATIBILITY.get(i.value, i.value) for i in result.incompatibilities})
    where = sorted({_field_at(reader.schema, loc) for loc in result.locations} - {""})
    details = "; ".join(sorted(str(m) for m in result.messages))
    return [
        Problem(
            _label(reader),
            f"cannot read v{writer.version} records (not backward compatible): "
            f"{', '.join(kinds)} at {', '.join(where) or 'the top level'} ({details})",
        )
    ]


_INCOMPATIBILITY = {
    "reader_field_missing_default_value": "new field without a default",
    "missing_enum_symbols": "enum symbols removed",
    "type_mismatch": "type changed",
    "name_mismatch": "name changed",
    "missing_union_branch": "union branch removed",
    "fixed_size_mismatch": "fixed size changed",
}


def _field_at(schema: Any, location: str) -> str:
    """A checker location such as /fields/10/type/symbols as a dotted field path."""
    node, path = schema, []
    tokens = [t for t in location.split("/") if t]
    for token, following in zip(tokens, [*tokens[1:], None], strict=False):
        if token.isdigit() and isinstance(node, list):
            node = node[int(token)]
            if isinstance(node, dict) and "name" in node and following != "symbols":
                path.append(str(node["name"]))
        elif isinstance(node, dict) and token in node:
            node = node[token]
            if token == "symbols":
                path.append("symbols")
        else:
            break
    return ".".join(path)


def read_lock(directory: Path) -> list[dict[str, Any]]:
    path = directory / LOCK_FILE
    if not path.exists():
        return []
    entries = read_json(path)["locked"]
    return list(entries)


def _check_lock(directory: Path, cat: Catalogue) -> list[Problem]:
    try:
        locked = read_lock(directory)
    except (CatalogueError, KeyError, TypeError) as exc:
        return [Problem(LOCK_FILE, f"unreadable: {exc}")]
    problems = []
    current = {(sv.name, sv.version): sv for sv in cat.versions}
    seen_ids: dict[int, str] = {}
    for entry in locked:
        key = (entry["name"], entry["version"])
        where = f"{key[0]} v{key[1]}"
        seen_ids[entry["id"]] = where
        sv = current.get(key)
        if sv is None:
            problems.append(Problem(where, "was released (locked) but is gone from catalogue.json"))
            continue
        if sv.schema_id != entry["id"]:
            problems.append(
                Problem(
                    where,
                    f"pinned id changed from {entry['id']} to {sv.schema_id}; ids never change",
                )
            )
        if sv.fingerprint != entry["fingerprint"]:
            problems.append(
                Problem(
                    where,
                    "schema was edited after release (fingerprint differs from the lock); "
                    "revert it and add a new version instead",
                )
            )
    locked_keys = {(e["name"], e["version"]) for e in locked}
    for sv in cat.versions:
        if (sv.name, sv.version) in locked_keys:
            continue
        if sv.schema_id in seen_ids:
            problems.append(
                Problem(_label(sv), f"reuses the id of released {seen_ids[sv.schema_id]}")
            )
        problems.append(
            Problem(_label(sv), f"not in {LOCK_FILE}; run `ungebus schemas lock` once it is final")
        )
    return problems


def lock(directory: Path = PACKAGE_DIR) -> list[dict[str, Any]]:
    """Append every not-yet-locked version to the lock; never rewrites a locked entry.

    Refuses (CatalogueError) while anything other than 'not locked yet' is wrong, so a broken
    or incompatible schema cannot be locked in.
    """
    blocking = [p for p in check(directory) if f"not in {LOCK_FILE}" not in p.message]
    if blocking:
        raise CatalogueError("; ".join(str(p) for p in blocking))
    cat = load_catalogue(directory)
    locked = read_lock(directory)
    keys = {(e["name"], e["version"]) for e in locked}
    added = [
        {"name": sv.name, "version": sv.version, "id": sv.schema_id, "fingerprint": sv.fingerprint}
        for sv in cat.versions
        if (sv.name, sv.version) not in keys
    ]
    document = {
        "doc": "Released schema versions: append-only, written by `ungebus schemas lock`. "
        "`ungebus schemas check` fails if a locked version's id or schema text changes.",
        "locked": locked + added,
    }
    (directory / LOCK_FILE).write_text(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return added


def registry_import(cat: Catalogue) -> dict[str, Any]:
    """The catalogue as a Confluent Schema Registry IMPORT-mode load (see ``schemas export``)."""
    return {
        "doc": "POST each entry's {schema, schemaType, id, version} to "
        "/subjects/<subject>/versions on a registry in IMPORT mode. Subjects follow "
        "RecordNameStrategy (the Avro full name).",
        "subject_name_strategy": "RecordNameStrategy",
        "schemas": [
            {
                "subject": sv.full_name,
                "version": sv.version,
                "id": sv.schema_id,
                "schemaType": "AVRO",
                "schema": sv.text,
            }
            for sv in sorted(cat.versions, key=lambda sv: (sv.full_name, sv.version))
        ],
    }
