"""The schema catalogue: every (name, version) of every contract with its pinned schema id.

The ids live in the committed ``catalogue.json`` so every process agrees on them without a
registry server. Schema files may name shared types (the envelope, units, ...) from
``avsc/shared/``, listing those files in a top-level ``x-uses``. They are inlined here, so each
catalogued schema is self-contained: the form a Schema Registry stores and the form whose
fingerprint the lock file pins. To change a shared type, add a new shared file (``.v2``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
CATALOGUE_FILE = "catalogue.json"
LOCK_FILE = "catalogue.lock.json"
AVSC_DIR = "avsc"
SHARED_DIR = "shared"
USES_KEY = "x-uses"  # top-level attribute listing shared files; stripped when inlining

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})


class CatalogueError(ValueError):
    """The committed schema files or the catalogue are inconsistent."""


@dataclass(frozen=True, eq=False)  # identity hash: parsed schemas are cached per object
class SchemaVersion:
    """One catalogued schema: a version of a named contract with its pinned id."""

    name: str
    version: int
    schema_id: int
    schema: Mapping[str, Any] = field(repr=False)

    @property
    def full_name(self) -> str:
        """Avro full name, e.g. dk.ungebus.DropoutNotice; also the registry subject."""
        return f"{self.schema['namespace']}.{self.schema['name']}"

    @property
    def text(self) -> str:
        """The schema as one JSON string: what a registry stores and what the lock pins."""
        return schema_text(self.schema)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of ``text``; any edit, even to a doc, changes it."""
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class Catalogue:
    """All catalogued schema versions, indexed for the codec."""

    versions: tuple[SchemaVersion, ...]
    by_id: Mapping[int, SchemaVersion] = field(init=False, repr=False)
    newest: Mapping[str, SchemaVersion] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_id: dict[int, SchemaVersion] = {}
        newest: dict[str, SchemaVersion] = {}
        for sv in self.versions:
            if sv.schema_id in by_id:
                other = by_id[sv.schema_id]
                raise CatalogueError(
                    f"schema id {sv.schema_id} is pinned twice: {other.name} v{other.version} "
                    f"and {sv.name} v{sv.version}"
                )
            by_id[sv.schema_id] = sv
            if sv.name not in newest or newest[sv.name].version < sv.version:
                newest[sv.name] = sv
        object.__setattr__(self, "by_id", by_id)
        object.__setattr__(self, "newest", newest)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.newest))

    def get(self, name: str, version: int | None = None) -> SchemaVersion:
        """The given version of a contract, or its newest; KeyError names what is known."""
        if name not in self.newest:
            raise KeyError(f"unknown schema name {name!r}; known: {', '.join(self.names)}")
        if version is None:
            return self.newest[name]
        for sv in self.versions:
            if sv.name == name and sv.version == version:
                return sv
        raise KeyError(f"{name} has no version {version}")


def schema_text(schema: Mapping[str, Any]) -> str:
    """Compact JSON with the file's key order, so whitespace edits do not count as edits."""
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def avsc_path(directory: Path, name: str, version: int) -> Path:
    return directory / AVSC_DIR / f"{name}.v{version}.avsc"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CatalogueError(f"{path.name}: file not found") from exc
    except json.JSONDecodeError as exc:
        raise CatalogueError(f"{path.name}: not valid JSON ({exc})") from exc


def read_pins(directory: Path) -> list[tuple[str, int, int]]:
    """(name, version, id) as committed in catalogue.json."""
    data = read_json(directory / CATALOGUE_FILE)
    try:
        return [(str(p["name"]), int(p["version"]), int(p["id"])) for p in data["schemas"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogueError(f"{CATALOGUE_FILE}: every entry needs name, version, id") from exc


def _full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def inline_shared(schema: Mapping[str, Any], shared: Mapping[str, Any]) -> dict[str, Any]:
    """Replace the first reference to each shared named type by its definition."""
    defined: set[str] = set()

    def walk(node: Any, namespace: str | None) -> Any:
        if isinstance(node, str):
            if node in PRIMITIVES:
                return node
            full = _full_name(node, namespace)
            if full in defined:
                return node
            if full in shared:
                return walk(copy.deepcopy(shared[full]), full.rpartition(".")[0] or None)
            raise CatalogueError(f"unknown type {node!r} (not defined and not in {USES_KEY})")
        if isinstance(node, list):
            return [walk(branch, namespace) for branch in node]
        if not isinstance(node, dict):
            raise CatalogueError(f"not a schema: {node!r}")
        kind = node.get("type")
        out = {k: v for k, v in node.items() if k != USES_KEY}
        if kind in NAMED:
            ns = node.get("namespace", namespace)
            full = _full_name(node["name"], ns)
            defined.add(full)
            ns = full.rpartition(".")[0] or None
            if kind in ("record", "error"):
                out["fields"] = [{**f, "type": walk(f["type"], ns)} for f in node["fields"]]
        elif kind == "array":
            out["items"] = walk(node["items"], namespace)
        elif kind == "map":
            out["values"] = walk(node["values"], namespace)
        else:
            out["type"] = walk(kind, namespace)
        return out

    return dict(walk(schema, schema.get("namespace")))


def _collect_named(schema: Any, namespace: str | None, named: dict[str, Any]) -> None:
    """Index named types by both short and full name, as Avro resolves references."""
    if isinstance(schema, list):
        for branch in schema:
            _collect_named(branch, namespace, named)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        name = schema["name"]
        ns = schema.get("namespace", namespace)
        full = name if "." in name or not ns else f"{ns}.{name}"
        named[full] = named[name.rpartition(".")[2]] = schema
        namespace = full.rpartition(".")[0] or None
        for f in schema.get("fields", []):
            _collect_named(f["type"], namespace, named)
    elif kind == "array":
        _collect_named(schema["items"], namespace, named)
    elif kind == "map":
        _collect_named(schema["values"], namespace, named)
    elif isinstance(kind, dict | list):
        _collect_named(kind, namespace, named)


def named_types(schema: Any) -> dict[str, Any]:
    """Named types defined in a self-contained schema, by short and full name."""
    named: dict[str, Any] = {}
    _collect_named(schema, None, named)
    return named


def load_shared(directory: Path, uses: list[str]) -> dict[str, Any]:
    """Shared named types by full name, from the files a schema lists in x-uses."""
    shared: dict[str, Any] = {}
    for stem in uses:
        definition = read_json(directory / AVSC_DIR / SHARED_DIR / f"{stem}.avsc")
        shared[_full_name(definition["name"], definition.get("namespace"))] = definition
    return shared


def load_schema(directory: Path, name: str, version: int) -> dict[str, Any]:
    """A catalogued schema file, self-contained (shared types inlined)."""
    raw = read_json(avsc_path(directory, name, version))
    if not isinstance(raw, dict) or raw.get("type") != "record":
        raise CatalogueError(f"{name} v{version}: top level must be a record")
    return inline_shared(raw, load_shared(directory, list(raw.get(USES_KEY, []))))


def load_catalogue(directory: Path = PACKAGE_DIR) -> Catalogue:
    """Read catalogue.json and every schema it pins; raises CatalogueError when inconsistent."""
    versions = tuple(
        SchemaVersion(name, version, schema_id, load_schema(directory, name, version))
        for name, version, schema_id in read_pins(directory)
    )
    return Catalogue(versions)


@cache
def catalogue() -> Catalogue:
    """The committed catalogue, loaded once per process."""
    return load_catalogue(PACKAGE_DIR)
