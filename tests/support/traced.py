"""Telemetry for one test, as a component runs it; no tests here.

``Traced`` sets telemetry up with spans in a temporary folder through the real file exporter
and reads them back as JSON (as ``ungebus trace`` does); ``clean_telemetry`` (tests/conftest.py)
starts and ends each tracing test with telemetry shut down and no ``OTEL_*`` variables.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

from bus import telemetry
from bus.settings import Settings
from bus.telemetry.trace_cli import load_spans

OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_TRACES_SAMPLER",
)


class Traced:
    """Telemetry for one test, as a component runs it: ``setup`` with spans to a tmp folder."""

    def __init__(self, var_dir: Path, service: str = "ungebus-test", metrics: bool = True):
        self.settings = Settings(var_dir=var_dir, metrics_port=0 if metrics else None)
        self.service = service

    def __enter__(self) -> Traced:
        telemetry.shutdown()  # whatever an earlier test left
        telemetry.setup(self.service, self.settings)
        return self

    def __exit__(self, *_: object) -> None:
        telemetry.shutdown()

    def spans(self) -> list[dict[str, Any]]:
        """Every span exported so far (flushed first), as ``ungebus trace`` reads them."""
        assert telemetry.flush(10)
        return load_spans(self.settings.traces_dir)

    def scrape(self) -> str:
        address = telemetry.metrics_address()
        assert address is not None
        with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/metrics", timeout=10) as r:
            return str(r.read().decode())


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """The sample of ``name`` whose labels include ``labels`` (Prometheus text format)."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(
            re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(2) or "")
        )
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None


def by_name(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, f"{len(found)} spans named {name!r} in {[s['name'] for s in spans]}"
    return found[0]


def hex_id(value: str) -> int:
    return int(value.removeprefix("0x"), 16)
