"""How a worker ends when it must not go on: at once, acking and committing nothing more.

Its supervisor (``ungebus run``, ``ungebus streams``'s parent, systemd, Kubernetes) starts it
again; it resumes from the committed offsets, so the records of an unfinished window are
handled again (task ids are deterministic, the inbox stores a task once).
"""

from __future__ import annotations

import logging
import os

from bus import services
from streams.runtime.writer import DeliveryFailed

log = logging.getLogger("ungebus.router")

EXIT_BATCH_FAILED = services.EXIT_BATCH_FAILED
EXIT_TOPIC_GONE = services.EXIT_TOPIC_GONE
EXIT_STALLED = services.EXIT_RESTART  # the supervisor restarts it


def exit_on_batch_failure(exc: BaseException) -> None:
    """A commit window could not be completed: exit before any of it is acked."""
    if isinstance(exc, DeliveryFailed) and exc.gone:
        log.critical(
            "Kafka has no topic %s any more (deleted while the router ran?): exiting before "
            "this batch is acked or committed. Create it again (`ungebus topics create`, as "
            "admin), then start the router: it routes this batch and what came after again",
            ", ".join(sorted(exc.gone)),
        )
        exit_now(EXIT_TOPIC_GONE)
    log.critical(
        "A batch could not be completed (%s: %s); exiting before it is acked or committed, "
        "so it is processed again on restart",
        type(exc).__name__,
        exc if isinstance(exc, DeliveryFailed) else "stopped mid-batch or failed",
    )
    exit_now(EXIT_BATCH_FAILED)


def exit_now(code: int) -> None:
    """Exit at once, acking and committing nothing more (logs flushed first)."""
    logging.shutdown()
    os._exit(code)
