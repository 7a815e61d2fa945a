"""Fail points: named places where the fault suite makes a process ``kill -9`` itself.

Some faults matter only in a window a few microseconds wide: the inbox killed after its
database transaction and before its offset commit, or after Kafka acknowledged a take-over and
before the database recorded it. A signal sent from outside lands there by luck; a fail point
lands there every time (the idea of FreeBSD's and TiKV's ``fail`` points). The process sends
itself SIGKILL, so nothing runs after it: no ``finally``, no flush, no commit.

Armed only through the environment, e.g. ``UNGEBUS_FAILPOINTS="inbox.feed.stored=3"``: the third
time the process passes ``inbox.feed.stored`` it dies. Unarmed (always, outside the fault
suite), a fail point is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "UNGEBUS_FAILPOINTS"


class FailPointError(ValueError):
    """UNGEBUS_FAILPOINTS does not read as ``name=N[,name=N...]``."""


def parse(spec: str) -> dict[str, int]:
    """``"a=3,b=1"`` -> ``{"a": 3, "b": 1}``: die on the Nth pass of each named point."""
    armed: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, count = part.partition("=")
        if not name or not count.isdigit() or int(count) < 1:
            raise FailPointError(
                f"{ENV}: {part!r} is not name=N with N a whole number of passes, 1 or more"
            )
        armed[name.strip()] = int(count)
    return armed


_armed = parse(os.environ.get(ENV, ""))
_passes: Counter[str] = Counter()


def failpoint(name: str) -> None:
    """Die here (SIGKILL) if ``name`` is armed and this is its Nth pass; else nothing."""
    if name not in _armed:
        return
    _passes[name] += 1
    if _passes[name] == _armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
