"""The policy preview's report: a summary for the data protection officer, and a CSV row for
every change of every event.

Only what says where data would go, never the data: event ids, pseudonyms, schema names,
units, kommunekoder, rule ids, field names, consent purposes. The summary counts events per
kind of change, unit, rule and field; the CSV lists them one by one, for a spreadsheet.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

from streams.replay.compare import KINDS, Change
from streams.replay.events import Tally
from streams.routing.decide import Decision

CSV_COLUMNS = ("event_id", "pseudonym", "event", "change", "unit", "kommunekode", "rule_id",
               "detail")  # fmt: skip
HEADINGS = {
    "route_added": "new routes",
    "route_removed": "routes removed",
    "field_added": "fields added",
    "field_removed": "fields removed",
    "basis_changed": "basis changed",
    "hold_added": "routes that would wait for a consent",
    "hold_removed": "routes that no longer wait for a consent",
}


@dataclass
class Preview:
    """What the candidate changes, counted as the events go by."""

    current: str  # policy versions
    candidate: str
    since: dt.datetime
    outcomes_current: Counter[str] = field(default_factory=Counter)
    outcomes_candidate: Counter[str] = field(default_factory=Counter)
    changed_events: int = 0
    counts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)

    def add(self, current: Decision, candidate: Decision, changes: Iterable[Change]) -> None:
        self.outcomes_current[current.outcome] += 1
        self.outcomes_candidate[candidate.outcome] += 1
        changed = False
        for change in changes:
            changed = True
            detail = "" if change.kind == "route_added" else change.detail
            self.counts[change.kind, change.unit, change.rule_id, detail] += 1
        self.changed_events += changed

    def summary(self, tally: Tally) -> list[str]:
        lines = [
            f"Policy preview: {self.current} (in force) -> {self.candidate} (candidate), "
            f"events since {self.since.isoformat()}",
            f"{tally.decided:,} events decided under both, with {tally.consents:,} consent "
            "records folded" + _left_out(tally),
            "outcomes in force:  " + _outcomes(self.outcomes_current),
            "outcomes candidate: " + _outcomes(self.outcomes_candidate),
        ]
        if not self.changed_events:
            return [*lines, "No event is routed differently."]
        lines.append(f"{self.changed_events:,} events are routed differently:")
        for kind in KINDS:
            rows = sorted((k, n) for k, n in self.counts.items() if k[0] == kind)
            if not rows:
                continue
            lines.append(f"  {HEADINGS[kind]}: {sum(n for _k, n in rows):,}")
            for (_kind, unit, rule, detail), n in rows:
                what = f" {detail}" if detail else ""
                lines.append(f"    {unit}{what} (rule {rule}): {n:,} events")
        return lines


def _outcomes(counts: Counter[str]) -> str:
    return ", ".join(f"{o} {counts[o]:,}" for o in ("routed", "held", "purged", "denied"))


def _left_out(tally: Tally) -> str:
    if not tally.left_out:
        return ""
    reasons = "; ".join(f"{n:,} {reason}" for reason, n in sorted(tally.left_out.items()))
    return f" (left out, as the router would: {reasons})"


class ChangesCsv:
    """Rows written as changes come, so a long history is never held in memory."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out)
        self._writer.writerow(CSV_COLUMNS)
        self.rows = 0

    def write(self, changes: Iterable[Change]) -> None:
        for c in changes:
            self._writer.writerow(
                (c.event_id, c.pseudonym, c.event, c.kind, c.unit, c.kommunekode, c.rule_id,
                 c.detail)
            )  # fmt: skip
            self.rows += 1
