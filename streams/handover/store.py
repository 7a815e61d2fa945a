"""The tracker's state as the tracker sees it: each person's :class:`Handovers`, staged per
record through the commit windows' store (``streams.routing.store.Staged``, satisfied by
``streams.runtime.state`` and, in unit tests, by the same store over a plain dict)."""

from __future__ import annotations

from streams.handover.state import Handovers
from streams.routing.store import Staged


class HandoverStore:
    TABLES = ("handovers",)

    def __init__(self, tables: Staged) -> None:
        self.tables = tables

    def get(self, pseudonym: str) -> Handovers:
        return Handovers.from_json(self.tables.get("handovers", pseudonym))

    def set(self, pseudonym: str, state: Handovers) -> None:
        """Stage ``state``; an empty one deletes the person's entry."""
        self.tables.set("handovers", pseudonym, None if state.empty else state.to_json())

    def begin(self) -> None:
        self.tables.begin()

    def undo(self) -> None:
        self.tables.undo()
