"""A faust table seen through a batch: reads see the batch's own writes, which reach the
table (and its changelog) only on :meth:`TableOverlay.flush`, after Kafka has the outputs.

Table keys are a pseudonym's bytes, which is also what the changelog holds after a recovery.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TableOverlay:
    table: MutableMapping[Any, Any]
    pending: dict[str, bytes | None] = field(default_factory=dict)

    def get(self, key: str) -> bytes | None:
        if key in self.pending:
            return self.pending[key]
        value: bytes | None = self.table.get(key.encode())
        return value

    def set(self, key: str, value: bytes | None) -> None:
        """Stage a value; None deletes the key."""
        self.pending[key] = value

    def flush(self) -> None:
        for key, value in self.pending.items():
            if value is None:
                self.table.pop(key.encode(), None)
            else:
                self.table[key.encode()] = value
        self.pending.clear()
