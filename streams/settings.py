"""The router's and the handover tracker's own settings, on the bus's shared ones.

Same environment variables as ever (``UNGEBUS_ROUTER_*``, ``UNGEBUS_TRACKER_*``,
``UNGEBUS_STREAM_BUFFER_MAXSIZE``). Several ``router_*`` fields apply to both workers (the
tracker runs in the same shell): they are in :class:`WorkerSettings`, with their old names.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bus.settings import Settings


class WorkerSettings(Settings):
    """What both faust workers read: commit windows, fetching, crash and stall limits."""

    router_batch_size: int = Field(default=500, ge=1)
    # A commit window closes when it holds router_batch_size records or is this old: longer
    # windows share Kafka's round trips among more records (throughput) and add to latency.
    router_commit_interval_s: float = Field(default=0.02, gt=0, le=5)
    # The broker answers a fetch when it has this many bytes or after the worker's max wait:
    # fewer, fuller fetches (fetching a record at a time cost more than routing it).
    router_fetch_min_bytes: int = Field(default=32_768, ge=1)
    # faust pauses a partition whose stream buffer passes maxsize / 1.25 and resumes it when
    # the buffer drains; after a restart with a backlog we saw partitions never resumed (the
    # worker idles with records waiting). A buffer this large keeps a backlog from reaching
    # that path; memory per buffered record is about 1 KB.
    stream_buffer_maxsize: int = Field(default=200_000, ge=1000)
    # The worker exits (for its supervisor to restart it) when records wait on a partition
    # whose committed offset has not moved for this long; checked every
    # router_liveness_interval_s.
    router_stall_after_s: float = Field(default=120.0, gt=0)
    router_liveness_interval_s: float = Field(default=10.0, gt=0)
    # A partition whose commit waits this long at a record read and not handled, while later
    # records were, is read again from that record (faust dropped it), in the process.
    router_read_again_after_s: float = Field(default=5.0, gt=0)
    # A record on which the router (or the tracker) crashed this many times in a row is
    # dead-lettered instead of handled again (``streams.runtime.quarantine``).
    router_crash_limit: int = Field(default=3, ge=1)


class RouterSettings(WorkerSettings):
    router_dedupe_days: int = Field(default=90, ge=1)
    router_fetch_max_wait_ms: int = Field(default=10, ge=0, le=500)
    router_hold_check_interval_s: float = Field(default=60.0, gt=0)


class TrackerSettings(WorkerSettings):
    # The handover tracker reads every task topic (150 partitions): at the router's 10 ms, its
    # fetching alone kept a quarter of a core busy in the broker and a fifth in the tracker
    # with nothing to read. Handovers are due in days; a second's wait costs nothing.
    tracker_fetch_max_wait_ms: int = Field(default=1000, ge=0, le=10_000)
    tracker_check_interval_s: float = Field(default=30.0, gt=0)
    # A take-over may be read before its task (separate topics); after this it is rejected.
    tracker_unknown_ack_grace_s: float = Field(default=300.0, ge=0)
    tracker_metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="the handover tracker's own metrics port"
    )

    def serving_metrics(self) -> TrackerSettings:
        """These settings with the tracker's own metrics port as ``metrics_port``."""
        return self.model_copy(update={"metrics_port": self.tracker_metrics_port})


def load_router_settings(**overrides: Any) -> RouterSettings:
    return RouterSettings(**overrides)


def load_tracker_settings(**overrides: Any) -> TrackerSettings:
    return TrackerSettings(**overrides)
