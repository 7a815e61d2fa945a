"""Commit windows: records handled whose outputs are on their way to Kafka.

faust acks a record when its agent moves on, even if handling it failed (DESIGN.md, known
traps). So the agents here read with manual acks (``stream.noack()``) and ack a record only
when its window commits: every output of the window is acknowledged by Kafka, then the
window's state changes reach the tables and their changelogs (acknowledged too), then its
records are acked (and faust may commit their offsets). A window closes when it is full or a
few milliseconds old.

Closed windows commit in the background, one after the other in the order they closed, while
the agent goes on handling records into the next window (reads see the changes of windows
still committing: ``streams.overlay``). At most ``depth`` windows commit at once; closing one
more waits for the oldest. If Kafka does not take a window's records, the process stops
before acking anything of it or of any later window (``fail``), and a restart handles them
again: task ids are deterministic, and the inbox stores a task once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from streams.outputs import Output
from streams.writer import Deliveries, OutputWriter

C = TypeVar("C")


class Staged(Protocol[C]):
    """State whose changes are staged per window (``streams.overlay``)."""

    def seal(self) -> C: ...

    def write(self, sealed: C) -> None: ...


S = TypeVar("S", bound=Staged[Any])


class Window(Generic[S]):
    """One per agent, each with its own writer: a window waits only for its own records."""

    def __init__(
        self,
        writer: OutputWriter,
        state: S,
        fail: Callable[[BaseException], None],
        max_records: int = 500,
        max_wait_s: float = 0.02,
        depth: int = 4,
    ) -> None:
        self.lock = asyncio.Lock()
        self._writer = writer
        self._fail = fail
        self._max_records = max_records
        self._max_wait_s = max_wait_s
        self._depth = depth
        self.state = state  # read through by the handlers; written to the tables on commit
        self._pending: list[tuple[Any, Any]] = []  # (stream, event) to ack
        self._opened = 0.0
        self._committing: deque[asyncio.Task[None]] = deque()
        self._failed: BaseException | None = None

    def add(self, outputs: Sequence[Output], stream: Any = None, event: Any = None) -> None:
        """Produce ``outputs``; ack ``event`` (if any) when the window commits. Hold the lock."""
        self._writer.produce(outputs)
        if event is not None:
            if not self._pending:
                self._opened = time.monotonic()
            self._pending.append((stream, event))

    @property
    def full(self) -> bool:
        return len(self._pending) >= self._max_records

    @property
    def due(self) -> bool:
        return bool(self._pending) and time.monotonic() - self._opened >= self._max_wait_s

    async def close(self) -> None:
        """Close the open window; it commits in the background. Hold the lock.

        Waits only when ``depth`` windows are committing already, for the oldest.
        """
        while self._committing and self._committing[0].done():
            self._committing.popleft()
        if len(self._committing) >= self._depth:
            await asyncio.shield(self._committing[0])
        previous = self._committing[-1] if self._committing else None
        outputs, changes = self._writer.cut(), self.state.seal()
        records, self._pending = self._pending, []
        self._committing.append(
            asyncio.ensure_future(self._commit(previous, outputs, changes, records))
        )

    async def commit(self) -> None:
        """Close the open window and wait until it and every window before it committed."""
        await self.close()
        await asyncio.shield(self._committing[-1])

    async def _commit(
        self,
        previous: asyncio.Task[None] | None,
        outputs: Deliveries,
        changes: Any,
        records: list[tuple[Any, Any]],
    ) -> None:
        """Outputs acknowledged -> state written (and acknowledged) -> records acked."""
        if previous is not None:
            await previous  # tables are written, and records acked, in window order
        try:
            if self._failed is not None:  # an earlier window failed: nothing more is acked
                raise self._failed
            await self._writer.delivered(outputs)
            changelog = Deliveries()
            with self._writer.into(changelog):  # the state's changelog records
                self.state.write(changes)
            await self._writer.delivered(changelog)
            for stream, event in records:
                await stream.ack(event)
        except asyncio.CancelledError:  # shutting down: unacked records come again on restart
            raise
        except BaseException as exc:  # never ack what Kafka may not have
            if self._failed is None:
                self._failed = exc
                self._fail(exc)
            raise

    async def keep_committing(self) -> None:
        """Run forever: close windows that have waited long enough."""
        while True:
            await asyncio.sleep(self._max_wait_s / 2)
            if self.due:
                async with self.lock:
                    if self.due:
                        await self.close()
