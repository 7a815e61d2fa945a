"""A faust table seen through commit windows: reads see the windows' own writes, which reach
the table (and its changelog) only when their window commits, after Kafka has its outputs.

While one window commits, the next is already being handled: the open window's changes sit
on top of the sealed ones still committing, and those on top of the table. Sealed changes are
written in the order they were sealed.

Within the open window, the changes of the record being handled can be taken back
(``begin``/``undo``): a record that is dead-lettered after it staged changes (its outputs too
large, or refused by the producer) leaves no trace in the tables. A key and value too large
for their changelog record are refused when staged (:class:`StateTooLarge`).

Table keys are a pseudonym's bytes, which is also what the changelog holds after a recovery.
"""

from __future__ import annotations

from collections import deque
from collections.abc import MutableMapping
from typing import Any, cast

Changes = dict[str, bytes | None]  # key -> new value; None deletes the key
_ABSENT = object()  # in the undo log: the key was not in the open window's changes


class StateTooLarge(ValueError):
    """A table entry over what its changelog record may hold."""


class TableOverlay:
    def __init__(self, table: MutableMapping[Any, Any], max_entry_bytes: int | None = None) -> None:
        self.table = table
        self.max_entry_bytes = max_entry_bytes  # key + value, as a changelog record; None: any
        self.pending: Changes = {}  # the open window's
        self._sealed: deque[Changes] = deque()  # oldest first, each waiting for its commit
        self._undo: dict[str, object] = {}  # the current record's keys: their earlier value

    def get(self, key: str) -> bytes | None:
        if key in self.pending:
            return self.pending[key]
        for changes in reversed(self._sealed):
            if key in changes:
                return changes[key]
        value: bytes | None = self.table.get(key.encode())
        return value

    def set(self, key: str, value: bytes | None) -> None:
        """Stage a value; None deletes the key. :class:`StateTooLarge` if it cannot be
        written to the changelog."""
        limit = self.max_entry_bytes
        if value is not None and limit is not None and len(key) + len(value) > limit:
            size = len(key.encode()) + len(value)
            if size > limit:
                raise StateTooLarge(
                    f"the state it leaves for one person would be {size:,} bytes, over the "
                    f"{limit:,} a changelog record may hold"
                )
        if key not in self._undo:
            self._undo[key] = self.pending.get(key, _ABSENT)
        self.pending[key] = value

    def begin(self) -> None:
        """A record starts: what is staged so far stays, whatever happens to it."""
        if self._undo:
            self._undo.clear()

    def undo(self) -> None:
        """Take back what was staged since ``begin``."""
        for key, earlier in self._undo.items():
            if earlier is _ABSENT:
                self.pending.pop(key, None)
            else:
                self.pending[key] = cast(bytes | None, earlier)
        self._undo.clear()

    def seal(self) -> Changes:
        """The open window's changes, closed; later ``set``s go to a new window."""
        self._undo.clear()
        sealed, self.pending = self.pending, {}
        self._sealed.append(sealed)
        return sealed

    def write(self, sealed: Changes) -> None:
        """Write the oldest sealed changes to the table (Kafka has their window's outputs)."""
        if not self._sealed or self._sealed[0] is not sealed:
            raise RuntimeError("sealed changes must be written in the order they were sealed")
        for key, value in sealed.items():
            if value is None:
                self.table.pop(key.encode(), None)
            else:
                self.table[key.encode()] = value
        self._sealed.popleft()
