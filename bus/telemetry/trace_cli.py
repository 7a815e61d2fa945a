"""``ungebus trace EVENT_ID``: one event's path through the bus, from the local span files.

Every component writes its spans as JSON lines to ``var/traces/<service>-<pid>.jsonl`` when no
OTLP endpoint is set. This command reads them all, picks the traces that carry the event (and
the traces linked to them: the file a row came from, the caseworker's request that took the
task over) and prints them as one indented tree in start-time order.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from bus.telemetry import BASIS, EVENT_ID, KOMMUNEKODE, OUTCOME, TASK_ID, UNIT

Span = Mapping[str, Any]


def read_spans(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Spans from JSON lines; a line being written right now (cut short) is skipped."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            span = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(span, dict) and isinstance(span.get("context"), dict):
            yield span


def load_spans(directory: Path) -> list[dict[str, Any]]:
    """Every span in every ``*.jsonl`` file of ``directory`` (none when it does not exist)."""
    spans: list[dict[str, Any]] = []
    if not directory.is_dir():
        return spans
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8", errors="replace") as lines:
            spans.extend(read_spans(lines))
    return spans


def trace_id(span: Span) -> str:
    return str(span["context"].get("trace_id", ""))


def span_id(span: Span) -> str:
    return str(span["context"].get("span_id", ""))


def attributes(span: Span) -> Mapping[str, Any]:
    found = span.get("attributes")
    return found if isinstance(found, Mapping) else {}


def service(span: Span) -> str:
    resource = span.get("resource")
    attrs = resource.get("attributes", {}) if isinstance(resource, Mapping) else {}
    return str(attrs.get("service.name", "?"))


def started(span: Span) -> dt.datetime:
    return _time(span.get("start_time"))


def _time(value: Any) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def _linked_traces(span: Span) -> set[str]:
    links = span.get("links") or []
    return {
        str(link["context"]["trace_id"])
        for link in links
        if isinstance(link, Mapping) and isinstance(link.get("context"), Mapping)
    }


def select_event(spans: Sequence[Span], event_id: str) -> list[Span]:
    """The spans of every trace that carries ``event_id``, plus the traces linked to them.

    Spans that name only a task of the event (``ungebus.task_id``) count too. Links are
    followed one step either way: a row's trace pulls in its file's span, a take-over pulls
    in the caseworker's request; a file's span does not pull in the file's other rows.
    """
    seeds = [s for s in spans if attributes(s).get(EVENT_ID) == event_id]
    task_ids = {attributes(s).get(TASK_ID) for s in seeds} - {None}
    seeds += [s for s in spans if task_ids and attributes(s).get(TASK_ID) in task_ids]
    traces = {trace_id(s) for s in seeds}
    if not traces:
        return []
    linked: set[str] = set()
    for span in spans:
        if trace_id(span) in traces:
            linked |= _linked_traces(span)
        elif _linked_traces(span) & traces:
            linked.add(trace_id(span))
    wanted = traces | linked
    unique = {(trace_id(s), span_id(s)): s for s in spans if trace_id(s) in wanted}
    return sorted(unique.values(), key=started)


def _summary(span: Span) -> str:
    attrs = attributes(span)
    parts = []
    if OUTCOME in attrs:
        parts.append(str(attrs[OUTCOME]))
    if UNIT in attrs:
        where = f"@{attrs[KOMMUNEKODE]}" if KOMMUNEKODE in attrs else ""
        parts.append(f"{attrs[UNIT]}{where}")
    if BASIS in attrs:
        parts.append(f"basis {attrs[BASIS]}")
    if TASK_ID in attrs:
        parts.append(f"task {attrs[TASK_ID]}")
    status = span.get("status")
    if isinstance(status, Mapping) and status.get("status_code") == "ERROR":
        parts.append(f"ERROR {status.get('description', '')}".strip())
    return ", ".join(parts)


def render(spans: Sequence[Span]) -> list[str]:
    """One line per span: ms since the first span, service, indented name, duration, outcome."""
    if not spans:
        return []
    ordered = sorted(spans, key=started)
    first = started(ordered[0])
    ids = {span_id(s) for s in ordered}
    children: dict[str, list[Span]] = {}
    roots: list[Span] = []
    for span in ordered:
        parent = span.get("parent_id")
        if parent and parent in ids:
            children.setdefault(str(parent), []).append(span)
        else:
            roots.append(span)
    width = max(len(service(s)) for s in ordered)
    lines: list[str] = []

    def walk(span: Span, depth: int) -> None:
        offset = (started(span) - first).total_seconds() * 1000
        took = (_time(span.get("end_time")) - started(span)).total_seconds() * 1000
        name = "  " * depth + str(span.get("name", "?"))
        summary = _summary(span)
        lines.append(
            f"{offset:9.1f} ms  {service(span):<{width}}  {name}  ({took:.1f} ms)"
            + (f"  {summary}" if summary else "")
        )
        for child in children.get(span_id(span), []):
            walk(child, depth + 1)

    previous_trace = None
    for root in roots:
        if trace_id(root) != previous_trace:
            previous_trace = trace_id(root)
            lines.append(f"trace {previous_trace.removeprefix('0x')}")
        walk(root, 1)
    return lines


@click.command()
@click.argument("event_id")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="span files to read [UNGEBUS_VAR_DIR/traces]",
)
@click.option("--json", "as_json", is_flag=True, help="print the spans as JSON lines instead")
def trace(event_id: str, directory: Path | None, as_json: bool) -> None:
    """Print EVENT_ID's path through the bus: every span of its trace, as a tree."""
    from bus.settings import load_settings

    directory = directory or load_settings().traces_dir
    spans = select_event(load_spans(directory), event_id)
    if not spans:
        raise click.ClickException(
            f"no spans for event {event_id} in {directory}/*.jsonl. Spans are written there "
            "only when no OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT); with OTLP export "
            "look the event up in the collector (e.g. Jaeger: tag ungebus.event_id). Spans are "
            "written a few seconds after they end."
        )
    if as_json:
        for span in spans:
            click.echo(json.dumps(span, separators=(",", ":")))
        return
    traces = len({trace_id(s) for s in spans})
    click.echo(f"event {event_id}: {len(spans)} spans in {traces} traces ({directory})")
    for line in render(spans):
        click.echo(line)
