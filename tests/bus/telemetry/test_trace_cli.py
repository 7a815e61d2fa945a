"""``ungebus trace``: which spans make up one event's path, and how it is printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from bus.telemetry.trace_cli import load_spans, read_spans, render, select_event, trace

EVENT = "0b7d2a6e-7a43-4f3c-9f55-3f1c2b7a9e01"
TRACE, FILE_TRACE, CASEWORKER_TRACE, OTHER = (
    "0x" + "a" * 32,
    "0x" + "b" * 32,
    "0x" + "c" * 32,
    "0x" + "d" * 32,
)


def span(
    name: str,
    service: str,
    trace_id: str,
    span_id: str,
    parent: str | None,
    start_ms: int,
    took_ms: int = 2,
    links: tuple[tuple[str, str], ...] = (),
    status: str = "UNSET",
    **attributes: Any,
) -> dict[str, Any]:
    def at(ms: int) -> str:
        return f"2026-11-27T10:00:{ms // 1000:02d}.{ms % 1000:03d}000Z"

    return {
        "name": name,
        "context": {"trace_id": trace_id, "span_id": span_id, "trace_state": "[]"},
        "kind": "SpanKind.INTERNAL",
        "parent_id": parent,
        "start_time": at(start_ms),
        "end_time": at(start_ms + took_ms),
        "status": {"status_code": status},
        "attributes": {k.replace("__", "."): v for k, v in attributes.items()},
        "events": [],
        "links": [{"context": {"trace_id": t, "span_id": s}, "attributes": {}} for t, s in links],
        "resource": {"attributes": {"service.name": service}},
    }


def event_spans() -> list[dict[str, Any]]:
    """A file row through the router to a take-over, plus an unrelated event's trace."""
    return [
        span("process file dropout_notice", "ungebus-connector-files", FILE_TRACE, "0xf1",
             None, 0, 9),
        span(
            "send t.inbound.dropout_notice", "ungebus-connector-files", TRACE, "0x01", None, 3,
            links=((FILE_TRACE, "0xf1"),), ungebus__event_id=EVENT, ungebus__outcome="sent",
        ),
        span(
            "process t.inbound.dropout_notice", "ungebus-router", TRACE, "0x02", "0x01", 20,
            ungebus__event_id=EVENT, ungebus__outcome="routed",
        ),
        span(
            "send t.tasks.161.youth_unit", "ungebus-router", TRACE, "0x03", "0x02", 21,
            ungebus__event_id=EVENT, ungebus__task_id="task-1", ungebus__unit="youth_unit",
            ungebus__kommunekode="161", ungebus__basis="kui_12c",
        ),
        span(
            "process t.tasks.161.youth_unit", "ungebus-inbox", TRACE, "0x04", "0x03", 40,
            ungebus__task_id="task-1", ungebus__outcome="stored",
        ),
        span(
            "POST /api/tasks/{task_id}/take-over", "ungebus-inbox", CASEWORKER_TRACE, "0xc1",
            None, 900, 12,
        ),
        span(
            "send t.task-acks.161", "ungebus-inbox", TRACE, "0x05", "0x04", 905,
            links=((CASEWORKER_TRACE, "0xc1"),), ungebus__task_id="task-1",
            ungebus__outcome="taken_over", ungebus__unit="youth_unit", ungebus__kommunekode="161",
        ),
        # Another row of the same file: its own trace, linked to the file, not selected.
        span(
            "send t.inbound.dropout_notice", "ungebus-connector-files", OTHER, "0x09", None, 4,
            links=((FILE_TRACE, "0xf1"),), ungebus__event_id="another-event",
        ),
    ]  # fmt: skip


def test_the_event_trace_and_the_traces_linked_to_it_are_selected() -> None:
    selected = select_event(event_spans(), EVENT)
    assert [s["context"]["span_id"] for s in selected] == [
        "0xf1", "0x01", "0x02", "0x03", "0x04", "0xc1", "0x05",
    ]  # fmt: skip
    assert select_event(event_spans(), "unknown") == []


def test_spans_naming_only_the_task_are_found_through_the_task_id() -> None:
    spans = [s for s in event_spans() if s["context"]["trace_id"] != TRACE]
    spans.append(
        span("send t.escalations.161.youth_unit", "ungebus-tracker", OTHER + "e", "0x0e", None,
             1, ungebus__task_id="task-1", ungebus__outcome="escalated")
    )  # fmt: skip
    spans.append(span("route", "ungebus-router", "0x" + "e" * 32, "0x0f", None, 0,
                      ungebus__event_id=EVENT, ungebus__task_id="task-1"))  # fmt: skip
    names = [s["name"] for s in select_event(spans, EVENT)]
    assert names == ["route", "send t.escalations.161.youth_unit"]


def test_the_path_is_printed_as_a_tree_in_start_order() -> None:
    lines = render(select_event(event_spans(), EVENT))
    assert lines[0] == f"trace {'b' * 32}"
    assert lines[1].split() == [
        "0.0", "ms", "ungebus-connector-files", "process", "file", "dropout_notice", "(9.0", "ms)",
    ]  # fmt: skip
    assert lines[2] == f"trace {'a' * 32}"
    text = "\n".join(lines)
    assert (
        "\n      3.0 ms  ungebus-connector-files    send t.inbound.dropout_notice  (2.0 ms)" in text
    )
    assert "      process t.inbound.dropout_notice  (2.0 ms)  routed" in text
    assert (
        "        send t.tasks.161.youth_unit  (2.0 ms)  youth_unit@161, basis kui_12c, task task-1"
        in text
    )
    assert (
        "            send t.task-acks.161  (2.0 ms)  taken_over, youth_unit@161, task task-1"
        in text
    )
    assert lines[-1].split()[:3] == ["900.0", "ms", "ungebus-inbox"]
    assert "POST /api/tasks/{task_id}/take-over  (12.0 ms)" in lines[-1]
    assert render([]) == []


def test_partial_and_foreign_lines_are_skipped(tmp_path: Path) -> None:
    good = json.dumps(event_spans()[1])
    assert [s["name"] for s in read_spans([good, "", "[1, 2]", good[:40]])] == [
        "send t.inbound.dropout_notice"
    ]
    (tmp_path / "a-1.jsonl").write_text(good + "\n" + good[:30])
    (tmp_path / "notes.txt").write_text(good)
    assert len(load_spans(tmp_path)) == 1
    assert load_spans(tmp_path / "missing") == []


def test_the_command_prints_the_tree_or_says_where_it_looked(tmp_path: Path) -> None:
    with (tmp_path / "ungebus-router-1.jsonl").open("w") as out:
        out.writelines(json.dumps(s) + "\n" for s in event_spans())
    runner = CliRunner()
    shown = runner.invoke(trace, [EVENT, "--dir", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith(f"event {EVENT}: 7 spans in 3 traces")
    assert "send t.task-acks.161" in shown.output
    as_json = runner.invoke(trace, [EVENT, "--dir", str(tmp_path), "--json"])
    lines = [json.loads(line) for line in as_json.output.splitlines()]
    assert [s["context"]["span_id"] for s in lines][:2] == ["0xf1", "0x01"]
    missing = runner.invoke(trace, ["no-such-event", "--dir", str(tmp_path)])
    assert missing.exit_code == 1
    assert str(tmp_path) in missing.output and "OTLP" in missing.output
