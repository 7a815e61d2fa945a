"""W3C trace context for published records, until OpenTelemetry tracing arrives.

One function on purpose: the tracing issue replaces its body with the current span's context.
"""

from __future__ import annotations

import re
import secrets

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def new_traceparent(incoming: str | None = None) -> str:
    """``00-<trace id>-<span id>-01``: the caller's trace continued if it sent a valid one."""
    trace_id = None
    if incoming is not None:
        match = _TRACEPARENT.fullmatch(incoming.strip())
        if match and match.group(1) != "0" * 32:
            trace_id = match.group(1)
    span_id = secrets.token_hex(8)
    while span_id == "0" * 16:  # pragma: no cover - 1 in 2**64
        span_id = secrets.token_hex(8)
    return f"00-{trace_id or _trace_id()}-{span_id}-01"


def _trace_id() -> str:
    while (trace_id := secrets.token_hex(16)) == "0" * 32:  # pragma: no cover
        pass
    return trace_id
