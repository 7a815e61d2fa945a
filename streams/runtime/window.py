"""Commit windows: records handled whose outputs are on their way to Kafka.

faust acks a record when its agent moves on, even if handling it failed (DESIGN.md, known
traps). So the agents here read with manual acks (``stream.noack()``) and ack a record only
when its window commits: every output of the window is acknowledged by Kafka, then the
window's state changes reach the tables and their changelogs (acknowledged too), then its
records are acked (and faust may commit their offsets). A window closes when it is full or a
few milliseconds old.

Closed windows commit in the background, one after the other in the order they closed, while
the agent goes on handling records into the next window (reads see the changes of windows
still committing: ``streams.runtime.state``). At most ``depth`` windows commit at once;
closing one more waits for the oldest. If Kafka does not take a window's records, the process stops
before acking anything of it or of any later window (``fail``), and a restart handles them
again: task ids are deterministic, and the inbox stores a task once.

One record's failure is not the window's: a record librdkafka refuses in ``produce`` is
replaced at once by its dead letter, and the state changes it staged are taken back (``add``);
a record the broker refuses (too large, invalid; ``streams.runtime.writer.PERMANENT``) is produced
again alone when its window commits, since the broker refuses a whole batch for one record;
refused alone, it is dead-lettered, the dead letter acknowledged before the window's records
are acked. Its state changes stand then (they are sealed with the window's): the
dead letter says what was refused. Only failures that are not about one record (the broker
away, a timeout, a fatal producer error) stop the process.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from streams.routing.dead_letters import DeadLetters
from streams.routing.outputs import InMessage, Output
from streams.runtime.state import Changes, StagedTables
from streams.runtime.writer import Deliveries, DeliveryFailed, OutputWriter, Refusal, Refused

REFUSED = "RefusedByKafka"  # the dead letters' error type


class Window:
    """One per agent, each with its own writer: a window waits only for its own records."""

    def __init__(
        self,
        writer: OutputWriter,
        state: StagedTables,
        fail: Callable[[BaseException], None],
        *,
        dead_letters: DeadLetters,
        max_records: int = 500,
        max_wait_s: float = 0.02,
        depth: int = 4,
    ) -> None:
        self.lock = asyncio.Lock()
        self._writer = writer
        self._fail = fail
        self.dead_letters = dead_letters
        self._max_records = max_records
        self._max_wait_s = max_wait_s
        self._depth = depth
        self.state = state  # read through by the handlers; written to the tables on commit
        self._pending: list[tuple[Any, Any]] = []  # (stream, event) to ack
        self._opened = 0.0
        self._committing: deque[asyncio.Task[None]] = deque()
        self._failed: BaseException | None = None

    def add(
        self,
        outputs: Sequence[Output],
        stream: Any = None,
        event: Any = None,
        source: InMessage | None = None,
    ) -> None:
        """Produce ``outputs``, made from ``source`` if they are a consumed record's; ack
        ``event`` (if any) when the window commits. Hold the lock.

        If librdkafka refuses one of them, ``source`` is dead-lettered instead and the state
        changes it staged are taken back (a timer's refused output is dead-lettered itself).
        """
        try:
            self._writer.produce(outputs, source)
        except Refused as refused:
            if source is not None:
                self.state.undo()
                before = refused.produced_before
                reason = (
                    f"{refused} ({before} of its {len(outputs)} outputs were handed to Kafka "
                    "before); its state changes are taken back"
                )
                letter = self.dead_letters.of_record(source, reason, REFUSED)
            else:
                letter = self.dead_letters.of_output(refused.output, str(refused), REFUSED)
            self._writer.produce([letter], source)
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
        changes: Changes,
        records: list[tuple[Any, Any]],
    ) -> None:
        """Outputs acknowledged -> state written (and acknowledged) -> records acked."""
        if previous is not None:
            await previous  # tables are written, and records acked, in window order
        try:
            if self._failed is not None:  # an earlier window failed: nothing more is acked
                raise self._failed
            await self._writer.delivered(outputs)
            refused = await self._alone(outputs.refused) if outputs.refused else []
            if refused:
                await self._dead_letter(refused)
            changelog = Deliveries()
            with self._writer.into(changelog):  # the state's changelog records
                self.state.write(changes, self._writer)
            await self._writer.delivered(changelog)
            if changelog.refused:  # bounded when staged (``streams.runtime.state``): not expected
                raise DeliveryFailed(f"Kafka refused state: {changelog.refused[0].error}")
            for stream, event in records:
                await stream.ack(event)
        except asyncio.CancelledError:  # shutting down: unacked records come again on restart
            raise
        except BaseException as exc:  # never ack what Kafka may not have
            if self._failed is None:
                self._failed = exc
                self._fail(exc)
            raise

    async def _alone(self, refused: list[Refusal]) -> list[Refusal]:
        """The refusals that are a record's own. The broker refuses a record batch as a whole
        and librdkafka reports each record of it refused, so each is produced again alone
        (the next once Kafka answered for it); what is refused alone stays refused."""
        kept: list[Refusal] = []
        for refusal in refused:
            again = Deliveries()
            with self._writer.into(again):
                self._writer.produce([refusal.output()], refusal.source)
            await self._writer.delivered(again)
            kept += again.refused
        return kept

    async def _dead_letter(self, refused: list[Refusal]) -> None:
        """Dead letters for the records whose outputs the broker refused for good, each
        record once; acknowledged, or the window fails."""
        letters = Deliveries()
        done: set[tuple[str, int, int]] = set()
        with self._writer.into(letters):
            for refusal in refused:
                reason = f"Kafka refused its output for {refusal.topic}: {refusal.error}"
                if refusal.source is None:
                    made = Output(refusal.topic, refusal.key, refusal.value, refusal.headers)
                    self._writer.produce([self.dead_letters.of_output(made, reason, REFUSED)])
                    continue
                source = refusal.source
                if (source.topic, source.partition, source.offset) not in done:
                    done.add((source.topic, source.partition, source.offset))
                    reason += "; its other outputs and state changes stand"
                    self._writer.produce([self.dead_letters.of_record(source, reason, REFUSED)])
        await self._writer.delivered(letters)
        if letters.refused:
            raise DeliveryFailed(f"Kafka refused dead letters too: {letters.refused[0].error}")

    async def keep_committing(self) -> None:
        """Run forever: close windows that have waited long enough."""
        while True:
            await asyncio.sleep(self._max_wait_s / 2)
            if self.due:
                async with self.lock:
                    if self.due:
                        await self.close()
