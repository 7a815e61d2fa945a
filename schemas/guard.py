"""A bounded pre-pass over untrusted Avro binary before fastavro sees it.

fastavro trusts array/map block counts and string lengths: four hostile bytes can ask it for
billions of items. This walker follows the writer schema and checks every count and length
against the bytes that are actually left (and a maximum item count), so a decode either fails
fast with a reason or is known to fit the payload. It allocates nothing per item.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from schemas.catalogue import PRIMITIVES, named_types

# A step reads one value starting at pos and returns the position after it.
Step = Callable[[bytes, int], int]

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class GuardError(ValueError):
    """Untrusted bytes do not fit the writer schema; ``code`` is a short machine-readable kind."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """Zig-zag varint, at most 10 bytes (the Avro long encoding)."""
    if pos < len(buf) and buf[pos] < 0x80:  # fast path: most counts and lengths are small
        byte = buf[pos]
        return (byte >> 1) ^ -(byte & 1), pos + 1
    result = shift = 0
    end = len(buf)
    for _ in range(10):
        if pos >= end:
            raise GuardError("truncated", f"data ends inside a number at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
    raise GuardError("invalid_number", f"a number at byte {pos - 10} runs over 10 bytes")


def _need(buf: bytes, pos: int, size: int, what: str) -> int:
    if size > len(buf) - pos:
        raise GuardError(
            "truncated", f"{what} needs {size} bytes at byte {pos}, only {len(buf) - pos} left"
        )
    return pos + size


def _long(buf: bytes, pos: int) -> int:
    return read_long(buf, pos)[1]


def _int(buf: bytes, pos: int) -> int:
    value, end = read_long(buf, pos)
    if not INT_MIN <= value <= INT_MAX:
        raise GuardError("invalid_number", f"int at byte {pos} is out of 32-bit range")
    return end


def _boolean(buf: bytes, pos: int) -> int:
    end = _need(buf, pos, 1, "boolean")
    if buf[pos] > 1:
        raise GuardError("invalid_value", f"boolean at byte {pos} is neither 0 nor 1")
    return end


def _length_prefixed(what: str) -> Step:
    def step(buf: bytes, pos: int) -> int:
        size, start = read_long(buf, pos)
        if size < 0:
            raise GuardError("invalid_length", f"{what} at byte {pos} has negative length")
        return _need(buf, start, size, what)

    return step


_PRIMITIVE_STEPS: dict[str, Step] = {
    "null": lambda buf, pos: pos,
    "boolean": _boolean,
    "int": _int,
    "long": _long,
    "float": lambda buf, pos: _need(buf, pos, 4, "float"),
    "double": lambda buf, pos: _need(buf, pos, 8, "double"),
    "bytes": _length_prefixed("bytes"),
    "string": _length_prefixed("string"),
}


def min_size(schema: Any, named: Mapping[str, Any] | None = None) -> int:
    """Fewest bytes a value can take; 0 means a block count cannot be bounded by the bytes."""
    return _min_size(schema, {**named_types(schema), **(named or {})}, frozenset())


def _min_size(schema: Any, named: Mapping[str, Any], seen: frozenset[str]) -> int:
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return {"null": 0, "float": 4, "double": 8}.get(schema, 1)
        if schema in seen:
            return 0
        return _min_size(named[schema], named, seen | {schema})
    if isinstance(schema, list):
        return 1 + min(_min_size(b, named, seen) for b in schema)
    kind = schema["type"]
    if kind in ("record", "error"):
        return sum(_min_size(f["type"], named, seen) for f in schema["fields"])
    if kind in ("enum", "array", "map"):
        return 1
    if kind == "fixed":
        return int(schema["size"])
    return _min_size(kind, named, seen)


def compile_guard(schema: Mapping[str, Any], max_items: int) -> Step:
    """A step that walks one value of ``schema``, bounding every count by bytes and max_items."""
    named = named_types(schema)
    steps: dict[str, Step] = {}

    def build(node: Any) -> Step:
        if isinstance(node, str):
            if node in _PRIMITIVE_STEPS:
                return _PRIMITIVE_STEPS[node]
            return lambda buf, pos: steps[node](buf, pos)  # late-bound: allows recursion
        if isinstance(node, list):
            return _union([build(branch) for branch in node])
        kind = node["type"]
        if kind in ("record", "error"):
            step = _record([build(f["type"]) for f in node["fields"]])
        elif kind == "enum":
            step = _enum(len(node["symbols"]))
        elif kind == "fixed":
            size = int(node["size"])
            step = lambda buf, pos: _need(buf, pos, size, "fixed")  # noqa: E731
        elif kind == "array":
            item = build(node["items"])
            step = _blocks(item, min_size(node["items"], named) > 0, max_items, "array")
        elif kind == "map":
            value = build(node["values"])
            key = _PRIMITIVE_STEPS["string"]
            step = _blocks(lambda b, p: value(b, key(b, p)), True, max_items, "map")
        else:
            return build(kind)
        for ref, definition in named.items():  # register under every name it is known by
            if definition is node:
                steps.setdefault(ref, step)
        return step

    return build(schema)


def _record(fields: list[Step]) -> Step:
    def step(buf: bytes, pos: int) -> int:
        for field_step in fields:
            pos = field_step(buf, pos)
        return pos

    return step


def _enum(count: int) -> Step:
    def step(buf: bytes, pos: int) -> int:
        index, end = read_long(buf, pos)
        if not 0 <= index < count:
            raise GuardError("invalid_value", f"enum index {index} at byte {pos} is out of range")
        return end

    return step


def _union(branches: list[Step]) -> Step:
    def step(buf: bytes, pos: int) -> int:
        index, end = read_long(buf, pos)
        if not 0 <= index < len(branches):
            raise GuardError("invalid_value", f"union branch {index} at byte {pos} does not exist")
        return branches[index](buf, end)

    return step


def _blocks(item: Step, bounded_by_bytes: bool, max_items: int, what: str) -> Step:
    def step(buf: bytes, pos: int) -> int:
        total = 0
        while True:
            count, pos = read_long(buf, pos)
            if count == 0:
                return pos
            if count < 0:  # a negative count is followed by the block's size in bytes
                count = -count
                size, pos = read_long(buf, pos)
                if size < 0 or size > len(buf) - pos:
                    raise GuardError("invalid_length", f"{what} block size at byte {pos} is bad")
            total += count
            if total > max_items:
                raise GuardError(
                    "too_many_items", f"{what} claims {total} items, over the limit of {max_items}"
                )
            if bounded_by_bytes and count > len(buf) - pos:
                raise GuardError(
                    "too_many_items",
                    f"{what} claims {count} items at byte {pos} but only {len(buf) - pos} "
                    "bytes are left",
                )
            for _ in range(count):
                pos = item(buf, pos)

    return step
