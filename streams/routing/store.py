"""The router's per-person state as the router sees it: consents, held events and seen event
ids by pseudonym, staged per record.

The router does not know where state lives or when it is written: it reads and stages
through :class:`Staged`, which the faust shell satisfies with its commit windows' store
(``streams.runtime.state``) and a unit test with the same store over plain dicts.
"""

from __future__ import annotations

from typing import Protocol

from streams.routing.consent import ConsentState
from streams.routing.held import HeldEvent, SeenEvents, held_from_json, held_to_json


class StateTooLarge(ValueError):
    """A table entry over what its changelog record may hold."""


class Staged(Protocol):
    """Tables by name, keyed by pseudonym, whose writes are staged until a commit.

    ``set`` raises :class:`StateTooLarge` for an entry its changelog record cannot hold;
    ``undo`` takes back what was staged since ``begin``, so a record that fails leaves no
    state change behind.
    """

    def get(self, table: str, key: str) -> bytes | None: ...

    def set(self, table: str, key: str, value: bytes | None) -> None: ...  # None deletes

    def begin(self) -> None: ...

    def undo(self) -> None: ...


class SubjectStore:
    """The router's state, typed: what its three tables hold per person (JSON values)."""

    TABLES = ("consents", "held", "seen")

    def __init__(self, tables: Staged) -> None:
        self.tables = tables

    def consents(self, pseudonym: str) -> ConsentState:
        return ConsentState.from_json(self.tables.get("consents", pseudonym))

    def held(self, pseudonym: str) -> tuple[HeldEvent, ...]:
        return held_from_json(self.tables.get("held", pseudonym))

    def seen(self, pseudonym: str) -> SeenEvents:
        return SeenEvents.from_json(self.tables.get("seen", pseudonym))

    def set_consents(self, pseudonym: str, state: ConsentState) -> None:
        self.tables.set("consents", pseudonym, state.to_json())

    def set_held(self, pseudonym: str, held: tuple[HeldEvent, ...]) -> None:
        self.tables.set("held", pseudonym, held_to_json(held) if held else None)

    def set_seen(self, pseudonym: str, seen: SeenEvents) -> None:
        self.tables.set("seen", pseudonym, seen.to_json())

    def forget(self, pseudonym: str) -> None:
        """Everything kept of one person deleted (an erasure): each table's entry removed."""
        for table in self.TABLES:
            self.tables.set(table, pseudonym, None)

    def begin(self) -> None:
        """A record starts: what earlier records staged stays."""
        self.tables.begin()

    def undo(self) -> None:
        """Take back what the current record staged."""
        self.tables.undo()
