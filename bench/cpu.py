"""CPU used during a benchmark phase: the machine's (all cores) and one process's, from /proc.

So a figure can be read beside how busy the machine was: on two cores, the broker, the load
generator and the router share them. Linux only; elsewhere the shares are None.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all cores since boot."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - idle, total


def _process_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@dataclass
class CpuMark:
    """A point in time to measure CPU shares from (``since``)."""

    router_pid: int
    wall: float
    machine: tuple[int, int] | None
    router: int | None
    own: float

    @classmethod
    def now(cls, router_pid: int) -> CpuMark:
        return cls(
            router_pid,
            time.monotonic(),
            _machine_ticks(),
            _process_ticks(router_pid),
            time.process_time(),
        )

    def since(self, start: CpuMark, process: str = "router") -> dict[str, float | None]:
        """Percent busy between ``start`` and this mark: the machine (100 = every core), the
        process measured (``<process>_cpu_pct``) and this benchmark process (100 = one core)."""
        wall = max(self.wall - start.wall, 1e-6)
        machine = None
        if self.machine and start.machine and self.machine[1] > start.machine[1]:
            busy = self.machine[0] - start.machine[0]
            machine = round(100 * busy / (self.machine[1] - start.machine[1]), 1)
        router = None
        if self.router is not None and start.router is not None:
            router = round(100 * (self.router - start.router) / _TICKS / wall, 1)
        return {
            "machine_busy_pct": machine,
            f"{process}_cpu_pct": router,
            "generator_cpu_pct": round(100 * (self.own - start.own) / wall, 1),
        }
