"""The process-wide telemetry state: what ``setup`` started, or None.

One place holds it so the proxies (``tracers``, ``meters``, ``lag``) and the lifecycle
(``lifecycle``) agree. Readers look ``STATE`` and ``GENERATION`` up on this module at each use
(``state.STATE``), never import the names: ``install`` and ``clear`` rebind them.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry import metrics

from bus.telemetry.lean_spans import LeanTracer

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider


@dataclass
class State:
    service: str
    tracer_provider: TracerProvider
    span_processor: SpanProcessor  # the provider's: lean spans end into it
    meter_provider: MeterProvider | None
    span_file: io.TextIOBase | None
    metrics_server: WSGIServer | None
    tracers: dict[str, LeanTracer] = field(default_factory=dict)
    meters: dict[str, metrics.Meter] = field(default_factory=dict)


LOCK = threading.RLock()
STATE: State | None = None
GENERATION = 0  # bumped by install and clear: proxies re-resolve their real instruments


def install(state: State) -> None:
    """Make ``state`` this process's telemetry (under ``LOCK``)."""
    global STATE, GENERATION
    STATE = state
    GENERATION += 1


def clear() -> State | None:
    """Forget this process's telemetry (under ``LOCK``); return what it was."""
    global STATE, GENERATION
    state, STATE = STATE, None
    GENERATION += 1
    return state
