"""A record that kills the router process is set aside after UNGEBUS_ROUTER_CRASH_LIMIT deaths.

The router runs under the supervisor, as ``ungebus run`` runs it. A ``sitecustomize`` on its
``PYTHONPATH`` (test only) makes the router's process die by SIGKILL, as the OOM killer or a
segfault in a C extension would, whenever it handles one chosen event. The supervisor starts
it again each time; after three deaths on that record the router dead-letters it as
``crashed_router`` unhandled, and the events behind it in the same partition are routed.
"""

from __future__ import annotations

import datetime as dt
import os
import textwrap
import uuid
from pathlib import Path

import pytest

import schemas
from bus.processes import ComponentSpec, Supervisor
from bus.settings import PROJECT_ROOT
from streams.routing.consent import ConsentState
from streams.routing.decide import InboundEvent, decide
from streams.routing.policy import load_policy
from tests.support import records
from tests.support.harness import Reader, fresh_bus, publish_to_router, settings_env

pytestmark = pytest.mark.integration

KIND = "dropout_notice"
CRASH_LIMIT = 3

# Runs at the start of every Python process that has it on its path.
DIE_ON_ONE_EVENT = textwrap.dedent(
    """
    import os
    import signal
    from pathlib import Path

    if os.environ.get("UNGEBUS_TEST_DIE_ON_EVENT"):
        import streams.routing.router as router

        handle = router.Router.handle

        def dying(self, message, store):
            if message.header("ce_id") == os.environ["UNGEBUS_TEST_DIE_ON_EVENT"]:
                with Path(os.environ["UNGEBUS_TEST_DEATHS"]).open("a") as deaths:
                    deaths.write(f"{os.getpid()}\\n")
                os.kill(os.getpid(), signal.SIGKILL)
            return handle(self, message, store)

        router.Router.handle = dying
    """
)


def test_a_record_that_kills_the_router_is_dead_lettered_after_three_deaths(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = fresh_bus(kafka_bootstrap, "crash", tmp_path)
    policy, now = load_policy(), dt.datetime.now(dt.UTC)
    pseudonym = uuid.uuid4().hex * 2  # one person: every record in one partition, in order
    events = [
        records.dropout_notice(age=16, residence="161", occurred_at=now, pseudonym=pseudonym)
        for _ in range(5)
    ]
    deadly = events[1]["envelope"]["event_id"]
    expected = {
        route.task_id
        for record in events
        if record["envelope"]["event_id"] != deadly
        for route in decide(InboundEvent(KIND, record), ConsentState(), policy, now).routes
    }
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(DIE_ON_ONE_EVENT)
    deaths = tmp_path / "deaths"
    env = settings_env(
        settings,
        PYTHONPATH=os.pathsep.join(p for p in (str(inject), os.environ.get("PYTHONPATH")) if p),
        UNGEBUS_TEST_DIE_ON_EVENT=deadly,
        UNGEBUS_TEST_DEATHS=str(deaths),
        UNGEBUS_ROUTER_CRASH_LIMIT=str(CRASH_LIMIT),
        UNGEBUS_CONSUMER_SESSION_TIMEOUT_S="6",
    )
    supervisor = Supervisor(tmp_path / "supervised", env, cwd=PROJECT_ROOT)
    supervisor.start(ComponentSpec("router", ("streams", "--role", "router", "--loglevel", "info"),
                                   lambda _: True))  # fmt: skip
    tasks = Reader(settings, settings.topics.all_tasks(), "crash-tasks")
    letters = Reader(settings, [settings.topics.deadletter], "crash-letters")
    try:
        landed = publish_to_router(
            settings,
            [(KIND, pseudonym.encode(), schemas.encode(KIND, r), schemas.cloudevent_headers(r))
             for r in events],
        )  # fmt: skip

        def supervised(_: object) -> bool:
            dead = supervisor.first_dead()  # starts the router again after each death
            assert dead is None, str(dead.failure(dead.how_it_ended())) if dead else ""
            return True

        def routed() -> set[str]:
            return {s.record["task_id"] for s in tasks.seen if s.name == "routed_task"}

        tasks.wait_for(
            lambda seen: supervised(seen) and routed() >= expected,
            timeout=300, what="the tasks of the events behind the deadly one",
        )  # fmt: skip
        letters.wait_for(lambda seen: supervised(seen) and bool(seen), timeout=60,
                         what="the deadly record's dead letter")  # fmt: skip
        [router] = supervisor.components
        assert router.exited() is None, "the router runs on"
        restarts = router.restarts
    finally:
        supervisor.stop_all(20, echo=print)
        tasks.close()
        letters.close()

    assert len(deaths.read_text().split()) == CRASH_LIMIT
    assert restarts == CRASH_LIMIT
    assert routed() == expected
    [letter] = letters.seen
    record = letter.record
    position = landed[1]
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == (
        position.topic, position.partition, position.offset,
    )  # fmt: skip
    assert record["error_type"] == "crashed_router"
    assert record["event_id"] == deadly
    assert (
        "the router process died 3 times in a row while handling this record" in (record["reason"])
    )
    assert record["original_value"] == schemas.encode(KIND, events[1])
