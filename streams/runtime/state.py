"""The workers' state store: the app's tables by name, seen through commit windows.

One commit (``streams.runtime.window``), in this order::

    read ──> handle ──────────> outputs delivered ──> state written ──────────> acked
    (agent)  (router/tracker:   (Kafka acknowledged   (``write``: table data,   (faust may
              ``get``/``set``,   every output of the    and its changelog        commit the
              staged here)       window: ``seal``)      records, acknowledged)   offsets)

Reads see the staged changes: the open window's on top of the sealed windows still
committing (newest first) on top of the table. While one window commits, the next is
already being handled; sealed changes are written in the order they were sealed, so a crash
never leaves a table claiming an event was routed when its task is not on Kafka.

Within the open window the changes of the record being handled can be taken back
(``begin``/``undo``): a record that is dead-lettered after it staged changes (its outputs too
large, or refused by the producer) leaves no trace. An entry too large for its changelog
record is refused when staged (:class:`~streams.routing.store.StateTooLarge`).

The changelog records go the way of the outputs, through the window's writer (batched by
librdkafka and awaited with them), not through faust's own producer, about 0.3 ms a record;
faust still owns the tables: it holds the data and restores it from the same changelog
topics, in the same raw format, on start (``streams.runtime.faust_fixes.TableChangelog``).
Keys are a pseudonym's bytes in the tables, which is also what a changelog holds.

A plain dict is a table too (unit tests): :meth:`StagedTables.in_memory`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Protocol, cast

from streams.routing.outputs import Output
from streams.routing.store import StateTooLarge

Changes = dict[tuple[str, str], bytes | None]  # (table, key) -> new value; None deletes it
_ABSENT = object()  # in the undo log: the key was not in the open window's changes


class Changelog(Protocol):
    """Where a table's changes are recorded: a table's changelog topic and partition."""

    def record(self, key: bytes, value: bytes | None) -> Output: ...


class Producer(Protocol):
    def produce(self, outputs: Sequence[Output]) -> None: ...


class StagedTables:
    """``tables`` by name (their data: key bytes -> value bytes), changes staged per window.

    ``changelogs`` names the tables whose changes ``write`` also produces as changelog records
    (every faust table); ``max_entry_bytes`` bounds key + value of one entry (None: any).
    """

    def __init__(
        self,
        tables: Mapping[str, MutableMapping[bytes, bytes]],
        *,
        changelogs: Mapping[str, Changelog] | None = None,
        max_entry_bytes: int | None = None,
    ) -> None:
        self._tables = dict(tables)
        self._changelogs = dict(changelogs or {})
        self.max_entry_bytes = max_entry_bytes
        self.pending: Changes = {}  # the open window's
        self._sealed: deque[Changes] = deque()  # oldest first, each waiting for its commit
        self._undo: dict[tuple[str, str], object] = {}  # the current record's: earlier values

    @classmethod
    def in_memory(cls, *names: str, max_entry_bytes: int | None = None) -> StagedTables:
        """Tables of plain dicts, without changelogs: for tests and tools."""
        return cls({name: {} for name in names}, max_entry_bytes=max_entry_bytes)

    def table(self, name: str) -> MutableMapping[bytes, bytes]:
        """The written data of one table (what the windows committed)."""
        return self._tables[name]

    def keys(self, table: str) -> list[str]:
        """The keys written to ``table`` (not those only staged), as the timers walk them."""
        return [key.decode() for key in list(self._tables[table].keys())]

    def get(self, table: str, key: str) -> bytes | None:
        at = (table, key)
        if at in self.pending:
            return self.pending[at]
        for changes in reversed(self._sealed):
            if at in changes:
                return changes[at]
        return self._tables[table].get(key.encode())

    def set(self, table: str, key: str, value: bytes | None) -> None:
        """Stage a value; None deletes the key. :class:`StateTooLarge` if it cannot be
        written to the changelog."""
        if table not in self._tables:
            raise KeyError(f"no table {table!r}")
        limit = self.max_entry_bytes
        if value is not None and limit is not None and len(key) + len(value) > limit:
            size = len(key.encode()) + len(value)
            if size > limit:
                raise StateTooLarge(
                    f"the state it leaves for one person would be {size:,} bytes, over the "
                    f"{limit:,} a changelog record may hold"
                )
        at = (table, key)
        if at not in self._undo:
            self._undo[at] = self.pending.get(at, _ABSENT)
        self.pending[at] = value

    def begin(self) -> None:
        """A record starts: what is staged so far stays, whatever happens to it."""
        if self._undo:
            self._undo.clear()

    def undo(self) -> None:
        """Take back what was staged since ``begin``."""
        for at, earlier in self._undo.items():
            if earlier is _ABSENT:
                self.pending.pop(at, None)
            else:
                self.pending[at] = cast(bytes | None, earlier)
        self._undo.clear()

    def seal(self) -> Changes:
        """The open window's changes, closed; later ``set``s go to a new window."""
        self._undo.clear()
        sealed, self.pending = self.pending, {}
        self._sealed.append(sealed)
        return sealed

    def write(self, sealed: Changes, producer: Producer | None = None) -> None:
        """Write the oldest sealed changes to the tables (Kafka has their window's outputs),
        each change to a table with a changelog also produced through ``producer``.

        Deleting a key the table does not hold changes nothing and records nothing.
        """
        if not self._sealed or self._sealed[0] is not sealed:
            raise RuntimeError("sealed changes must be written in the order they were sealed")
        for (name, key), value in sealed.items():
            data, raw = self._tables[name], key.encode()
            if value is None:
                if raw not in data:
                    continue
                del data[raw]
            else:
                data[raw] = value
            changelog = self._changelogs.get(name)
            if changelog is not None:
                if producer is None:
                    raise RuntimeError(f"table {name!r} has a changelog: write needs a producer")
                producer.produce([changelog.record(raw, value)])
        self._sealed.popleft()
