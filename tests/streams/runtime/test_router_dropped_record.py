"""A record the consumer reads and never hands to the agent is not lost.

faust-streaming 0.15.3 can drop a record it has read and then commit past it
(``streams.runtime.commit_guard``); the SIGKILL test lost tasks that way in CI. Here the router's
consumer is made to drop one record, once, in the router's own process (a ``sitecustomize``
on its ``PYTHONPATH``, test only). The router must hold that partition's commit back, read the
partition again from that record, and route it, in the same process (no restart: the
watchdog's minute is not what brings the record back).
"""

from __future__ import annotations

import datetime as dt
import os
import textwrap
import uuid
from pathlib import Path

import pytest

from bus.processes import ComponentSpec, Supervisor
from bus.settings import PROJECT_ROOT
from streams.routing.consent import ConsentState
from streams.routing.decide import InboundEvent, decide
from streams.routing.policy import load_policy
from tests.support import records
from tests.support.harness import Reader, fresh_bus, produce, settings_env

pytestmark = pytest.mark.integration

EVENTS = 12

# Runs at the start of every Python process that has it on its path: until the marker file
# exists, the consumer's first record from the target topic is read and skipped.
DROP_ONE_RECORD_ONCE = textwrap.dedent(
    """
    import os
    from pathlib import Path

    marker = Path(os.environ["UNGEBUS_TEST_DROP_MARKER"])
    if not marker.exists():
        import streams.runtime.faust_fixes as faust_fixes

        read = faust_fixes._Consumer.getmany

        async def getmany(self, timeout):
            async for tp, message in read(self, timeout):
                if tp.topic == os.environ["UNGEBUS_TEST_DROP_TOPIC"] and not marker.exists():
                    marker.write_text(f"{tp.partition} {message.offset}")
                    continue  # read, never handed to the agent
                yield tp, message

        faust_fixes._Consumer.getmany = getmany
    """
)


def test_a_record_read_and_dropped_is_read_again_and_routed_without_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = fresh_bus(kafka_bootstrap, "drop", tmp_path)
    policy, now = load_policy(), dt.datetime.now(dt.UTC)
    kind = "dropout_notice"
    events = [
        records.dropout_notice(
            age=17, residence="161", occurred_at=now, pseudonym=uuid.uuid4().hex * 2
        )
        for _ in range(EVENTS)
    ]
    expected = {
        route.task_id
        for record in events
        for route in decide(InboundEvent(kind, record), ConsentState(), policy, now).routes
    }
    assert len(expected) == EVENTS
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(DROP_ONE_RECORD_ONCE)
    marker = tmp_path / "dropped"
    env = settings_env(
        settings,
        PYTHONPATH=os.pathsep.join(p for p in (str(inject), os.environ.get("PYTHONPATH")) if p),
        UNGEBUS_TEST_DROP_MARKER=str(marker),
        UNGEBUS_TEST_DROP_TOPIC=settings.topics.inbound_events,
        UNGEBUS_CONSUMER_SESSION_TIMEOUT_S="6",
        UNGEBUS_ROUTER_STALL_AFTER_S="60",
        UNGEBUS_ROUTER_LIVENESS_INTERVAL_S="1",
        UNGEBUS_ROUTER_READ_AGAIN_AFTER_S="2",
    )
    reader = Reader(settings, settings.topics.all_tasks(), "drop-check")
    supervisor = Supervisor(tmp_path / "supervised", env, cwd=PROJECT_ROOT)
    router = ComponentSpec("router", ("streams", "--role", "router", "--loglevel", "info"),
                           lambda _: True)  # fmt: skip
    supervisor.start(router)
    try:
        produce(
            settings,
            [(settings.topics.inbound_events, kind, r) for r in events],
        )

        def routed() -> set[str]:
            return {s.record["task_id"] for s in reader.seen if s.name == "routed_task"}

        def done(_: object) -> bool:
            dead = supervisor.first_dead()  # restarts a router that asked for it
            assert dead is None, str(dead.failure(dead.how_it_ended())) if dead else ""
            return routed() >= expected

        reader.wait_for(done, timeout=120, what="every task, the dropped record's too")
    finally:
        supervisor.stop_all(20, echo=print)
    reader.close()

    assert marker.exists(), "no record was dropped: the test did not test anything"
    assert routed() == expected
    log = (tmp_path / "supervised" / "router.log").read_text(errors="replace")
    partition, offset = marker.read_text().split()
    topic = settings.topics.inbound_events
    telling = "\n".join(
        line
        for line in log.splitlines()
        if any(w in line for w in ("committing", "again", "moved", "Ready", "Traceback", "rror"))
    )
    assert f"Not committing {topic}-{partition} past offset {offset}" in log, telling
    assert f"Reading {topic}-{partition} again from offset {offset}" in log, telling
    assert "has not moved" not in log, telling
    assert [c.restarts for c in supervisor.components] == [0], telling
