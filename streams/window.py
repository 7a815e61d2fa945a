"""The commit window: records handled whose outputs are on their way to Kafka.

faust acks a record when its agent moves on, even if handling it failed (DESIGN.md, known
traps). So the agents here read with manual acks (``stream.noack()``) and ack a record only
when its window commits: every output produced so far is acknowledged by Kafka, then the
state changes reach the tables and their changelogs, then the records are acked (and faust
may commit their offsets). A window commits when it is full or a few milliseconds old. If
Kafka does not take the outputs, the process stops before acking anything (``fail``), and a
restart handles the window again: task ids are deterministic, and the inbox stores a task
once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from streams.outputs import Output
from streams.writer import OutputWriter


class Flushable(Protocol):
    def flush(self) -> None: ...


S = TypeVar("S", bound=Flushable)


class Window(Generic[S]):
    """One per agent, each with its own writer: a writer's flush counts only its own records."""

    def __init__(
        self,
        writer: OutputWriter,
        state: S,
        fail: Callable[[BaseException], None],
        max_records: int = 500,
        max_wait_s: float = 0.02,
    ) -> None:
        self.lock = asyncio.Lock()
        self._writer = writer
        self._fail = fail
        self._max_records = max_records
        self._max_wait_s = max_wait_s
        self.state = state  # read through by the handlers; written to the tables on commit
        self._pending: list[tuple[Any, Any]] = []  # (stream, event) to ack
        self._opened = 0.0

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

    async def commit(self) -> None:
        """Outputs acknowledged -> state written (and acknowledged) -> records acked.

        Hold the lock. The state's changelog records go through the same writer
        (``streams.changelog``), so the second wait covers them.
        """
        try:
            await self._writer.flushed()
            self.state.flush()
            await self._writer.flushed()
            for stream, event in self._pending:
                await stream.ack(event)
        except BaseException as exc:  # never ack what Kafka may not have
            self._fail(exc)
            raise
        self._pending.clear()

    async def keep_committing(self) -> None:
        """Run forever: commit windows that have waited long enough."""
        while True:
            await asyncio.sleep(self._max_wait_s / 2)
            if self.due:
                async with self.lock:
                    if self.due:
                        await self.commit()
