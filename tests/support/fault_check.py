"""The fault suite's reckoning: every event a partner got a 202 for, against what the bus made
of it. Expected tasks are decided again here from the acknowledged payloads (the same pure
``decide`` the router runs, no consents), then read back from the task topics.

- lost: an expected task id that never reached its topic;
- foreign: a task id on the topics for one of these events that ``decide`` does not give it
  (a second, different task for the same event: what a caseworker would see twice);
- repeated: task records beyond the first of a task id (at-least-once delivery; the inbox
  stores a task id once, so a caseworker does not see these).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from bus.settings import Settings
from bus.waiting import WaitTimeout
from schemas import parse_partner, to_record
from streams.routing.consent import ConsentState
from streams.routing.decide import InboundEvent, decide
from streams.routing.policy import load_policy
from tests.support.fault_load import Accepted
from tests.support.harness import Reader


def expected_tasks(settings: Settings, accepted: list[Accepted]) -> dict[str, str]:
    """task id -> event id, for every acknowledged event."""
    return {
        task_id: event_id for task_id, (event_id, _) in expected_routes(settings, accepted).items()
    }


def expected_routes(settings: Settings, accepted: list[Accepted]) -> dict[str, tuple[str, str]]:
    """task id -> (event id, the task topic it goes to), for every acknowledged event."""
    policy = load_policy()
    now = dt.datetime.now(dt.UTC)
    tasks: dict[str, tuple[str, str]] = {}
    for event in accepted:
        parsed = parse_partner(event.kind, event.payload)
        name, record = to_record(parsed, settings.pseudonym_key(), event.event_id)
        for route in decide(InboundEvent(name, record), ConsentState(), policy, now).routes:
            topic = settings.topics.tasks(route.kommunekode, route.unit)
            tasks[route.task_id] = (event.event_id, topic)
    return tasks


@dataclass(frozen=True)
class Reckoning:
    acknowledged: int
    expected: int
    routed: int
    lost: list[str]
    foreign: list[str]
    repeated: int

    def line(self) -> str:
        return (
            f"{self.acknowledged} acknowledged, {self.expected} tasks expected, {self.routed} "
            f"routed, {len(self.lost)} lost, {len(self.foreign)} second task ids, "
            f"{self.repeated} repeated records"
        )


def reckon(
    settings: Settings,
    accepted: list[Accepted],
    group: str,
    timeout_s: float = 180.0,
    written_off: frozenset[str] = frozenset(),
) -> Reckoning:
    """Read the task topics until every expected task is there (or ``timeout_s``); tasks
    ``written_off`` (destroyed by the fault itself, e.g. with their topic) are not expected."""
    expected = {t: e for t, e in expected_tasks(settings, accepted).items() if t not in written_off}
    ours = set(expected.values())
    reader = Reader(settings, settings.topics.all_tasks(), group)

    def task_ids() -> list[str]:
        return [
            s.record["task_id"]
            for s in reader.seen
            if s.name == "routed_task" and s.record.get("event_id") in ours
        ]

    try:
        reader.wait_for(lambda _: set(task_ids()) >= set(expected), timeout=timeout_s,
                        what="every acknowledged event's tasks")  # fmt: skip
    except WaitTimeout:
        pass  # the reckoning says what is missing
    finally:
        reader.close()
    seen = Counter(task_ids())
    return Reckoning(
        acknowledged=len(accepted),
        expected=len(expected),
        routed=len(set(seen) & set(expected)),
        lost=sorted(set(expected) - set(seen)),
        foreign=sorted(set(seen) - set(expected)),
        repeated=sum(n - 1 for n in seen.values()),
    )
