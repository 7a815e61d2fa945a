"""The check every tracing test ends with: no personal data in any exported span.

``assert_no_personal_data(spans, forbidden)`` looks at everything a span exports: name,
attributes, events, links, status message, trace state and resource. It fails on any value
that contains one of the ``forbidden`` strings (the test's CPR number, pseudonym, name...),
and on anything shaped like a CPR number (``DDMMYY-NNNN`` or ten digits on their own) or a
pseudonym (64 hex digits), whoever put it there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

CPR = re.compile(r"(?<![0-9A-Za-z])\d{6}-?\d{4}(?![0-9A-Za-z])")
PSEUDONYM = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")


def as_dict(span: Any) -> Mapping[str, Any]:
    """A span as exported: an SDK ``ReadableSpan`` or the JSON the file exporter wrote."""
    if isinstance(span, Mapping):
        return span
    return dict(json.loads(span.to_json(indent=None)))


def _values(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield f"{where}.{key} (key)", str(key)
            yield from _values(inner, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            yield from _values(inner, f"{where}[{index}]")
    elif value is not None:
        yield where, str(value)


def exported_values(span: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, text) of everything a span carries besides its ids and times."""
    yield "name", str(span.get("name", ""))
    yield from _values(span.get("attributes"), "attributes")
    yield from _values(span.get("events"), "events")
    yield from _values(span.get("links"), "links")
    yield from _values(span.get("status"), "status")
    yield from _values(span.get("resource"), "resource")
    context = span.get("context") or {}
    yield "context.trace_state", str(context.get("trace_state", ""))


def personal_data(spans: Iterable[Any], forbidden: Iterable[str] = ()) -> list[str]:
    """Every finding, as ``span name: where: why``; empty when the spans are clean."""
    needles = [f for f in forbidden if f]
    needles += [n.replace("-", "") for n in needles if "-" in n]  # a CPR without its dash
    findings = []
    for span in spans:
        data = as_dict(span)
        for where, text in exported_values(data):
            why = next((f"contains {n!r}" for n in needles if n in text), None)
            if why is None and CPR.search(text):
                why = "looks like a CPR number"
            if why is None and PSEUDONYM.search(text):
                why = "looks like a pseudonym (64 hex digits)"
            if why is not None:
                findings.append(f"{data.get('name')}: {where}: {why}")
    return findings


def assert_no_personal_data(spans: Iterable[Any], forbidden: Iterable[str]) -> None:
    spans = list(spans)
    assert spans, "no spans to check: the test exported nothing"
    findings = personal_data(spans, forbidden)
    assert not findings, "personal data in spans:\n" + "\n".join(findings)
