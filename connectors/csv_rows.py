"""CSV exports: one row per event, columns named by the JSON field paths.

Layout (documented in ``connectors/README.md``): the first line names the columns with the
same dotted paths the JSON body uses (``subject.cpr``, ``institution_contact.email``); a list
of objects takes an index (``active_measures.0.kind``); a list of values is one cell with the
values separated by ``|`` (``needs`` = ``housing|job``). An empty cell is an absent field.
Comma or semicolon separated (Danish spreadsheets write ``;`` and decimal commas), UTF-8.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from schemas import PARTNER_MODELS

LIST_SEPARATOR = "|"
_INT = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)")
_BOOLEANS = {"true": True, "false": False, "ja": True, "nej": False, "1": True, "0": False}


@dataclass(frozen=True)
class Row:
    """One data row of an export: its payload, or why it could not be read."""

    row: int  # 1 = the first data row
    line: int  # the line in the file where the row starts
    payload: dict[str, Any] | bytes | None
    error: dict[str, str] | None = None


def csv_rows(text: str, kind: str) -> Iterator[Row]:
    """The rows of a CSV export of ``kind``; unreadable rows come with an error."""
    text = text.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [name.strip() for name in next(reader)]
    except (StopIteration, csv.Error):
        yield Row(0, 1, None, _error("(header)", "the file has no header line", "csv_header"))
        return
    problem = _header_problem(header)
    if problem:
        yield Row(0, 1, None, _error("(header)", problem, "csv_header"))
        return
    schema = _schema(kind)
    number, line = 0, reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = f"CSV syntax error ({exc}); the rest of the file was not read"
            yield Row(number + 1, line, None, _error("(row)", reason, "csv_syntax"))
            return
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        number += 1
        if len(cells) != len(header):
            reason = f"has {len(cells)} cells; the header has {len(header)} columns"
            yield Row(number, start, None, _error("(row)", reason, "csv_cell_count"))
            continue
        yield Row(number, start, payload_from_cells(header, cells, schema))


def _header_problem(header: list[str]) -> str | None:
    if any(not name for name in header):
        return "the header has an empty column name"
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        return f"the header names {', '.join(duplicates)} more than once"
    return None


def _error(field: str, reason: str, code: str) -> dict[str, str]:
    return {"field": field, "reason": reason, "code": code}


@cache
def _schema(kind: str) -> dict[str, Any]:
    return PARTNER_MODELS[kind].model_json_schema()


def payload_from_cells(
    header: list[str], cells: list[str], schema: dict[str, Any]
) -> dict[str, Any]:
    """The JSON payload of one row: nested by the dotted column names, typed by the schema."""
    payload: dict[str, Any] = {}
    for path, cell in zip(header, cells, strict=True):
        value = cell.strip()
        if not value:
            continue
        parts = path.split(".")
        _set(payload, parts, _typed(value, _node(schema, parts, schema)))
    return _lists(payload)


def _set(target: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):  # "a" and "a.b" both as columns: the model rejects "a"
            return
    target[parts[-1]] = value


def _lists(value: Any) -> Any:
    """{"0": {...}, "1": {...}} -> [{...}, {...}]: indexed columns become lists."""
    if not isinstance(value, dict):
        return value
    converted = {key: _lists(item) for key, item in value.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _node(node: dict[str, Any] | None, parts: list[str], root: dict[str, Any]) -> Any:
    """The JSON schema of the field at ``parts`` (None when the model has no such field)."""
    for part in parts:
        node = _resolve(node, root)
        if node is None:
            return None
        node = node.get("items") if part.isdigit() else node.get("properties", {}).get(part)
    return _resolve(node, root)


def _resolve(node: dict[str, Any] | None, root: dict[str, Any]) -> dict[str, Any] | None:
    if node is None:
        return None
    if "$ref" in node:
        return _resolve(root["$defs"][node["$ref"].rsplit("/", 1)[-1]], root)
    for option in node.get("anyOf", []):
        if option.get("type") != "null":
            return _resolve(option, root)
    return node


def _typed(cell: str, node: dict[str, Any] | None) -> Any:
    """The cell as the JSON type the field expects; left a string where it does not fit."""
    kind = node.get("type") if node else None
    if kind == "array":
        items = node.get("items") if node else None
        return [_typed(v.strip(), items) for v in cell.split(LIST_SEPARATOR) if v.strip()]
    if kind == "integer" and _INT.fullmatch(cell):
        return int(cell)
    if kind == "number" and _NUMBER.fullmatch(cell):
        return float(cell.replace(",", "."))
    if kind == "boolean" and cell.lower() in _BOOLEANS:
        return _BOOLEANS[cell.lower()]
    return cell
