"""The audit store against a real broker: ``ungebus audit-store`` keeps each routing decision
once, however often it is on ``audit.routing``, and ``ungebus audit`` lists them."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from confluent_kafka import Producer

from bus.settings import PROJECT_ROOT, Settings
from bus.waiting import wait_until
from consumers.audit.settings import AuditSettings
from schemas import pseudonym
from schemas.synthetic import synthetic_cpr
from streams.routing import outputs
from streams.routing.consent import ConsentState
from streams.routing.decide import InboundEvent, decide
from streams.routing.policy import load_policy
from tests.support import records
from tests.support.harness import Reader, fresh_bus, running, settings_env

pytestmark = pytest.mark.integration

POLICY = load_policy()
T0 = records.OCCURRED + dt.timedelta(minutes=5)


def _decision(
    settings: Settings, record: dict[str, object], name: str, at: dt.datetime
) -> outputs.Output:
    """The audit record the router writes for ``record``, decided at ``at``."""
    event = InboundEvent(name, record)
    made = decide(event, ConsentState(), POLICY, at)
    return outputs.audit(
        settings.topics.audit_routing, event, made.outcome, made.routes, made.reason, made,
        POLICY, at, None,
    )  # fmt: skip


def _publish(settings: Settings, outs: Sequence[outputs.Output | tuple[bytes, bytes]]) -> None:
    producer = Producer(settings.producer_config())
    for out in outs:
        if isinstance(out, tuple):  # (key, raw bytes)
            producer.produce(settings.topics.audit_routing, key=out[0], value=out[1])
        else:
            producer.produce(out.topic, key=out.key, value=out.value, headers=out.headers)
    assert producer.flush(30) == 0


def _audit(settings: Settings, person: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bus", "audit", person],
        cwd=PROJECT_ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _wait_until_listed(settings: Settings, person: str, event_id: str) -> str:
    def listed() -> str:
        answer = _audit(settings, person)
        return answer.stdout if answer.returncode == 0 and event_id in answer.stdout else ""

    return wait_until(listed, 60, f"{event_id} listed by `ungebus audit`", every_s=0.5)


def test_each_decision_is_listed_once_however_often_it_was_published(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = fresh_bus(kafka_bootstrap, "audit", tmp_path)
    cpr = synthetic_cpr(random.Random(11), dt.date(2009, 2, 3))
    someone = pseudonym(cpr, settings.pseudonym_key())  # the key in tmp_path, as the CLI's
    person = {"pseudonym": someone}
    dropout = records.dropout_notice(age=16, **person)
    routed = _decision(settings, dropout, "dropout_notice", T0)
    # The router re-handled its window after a restart: the same decision, decided again.
    rehandled = _decision(settings, dropout, "dropout_notice", T0 + dt.timedelta(minutes=2))
    assert rehandled.header("ce_id") == routed.header("ce_id") and rehandled.value != routed.value
    held = _decision(
        settings, records.handover("municipality", to="161", age=20, **person), "handover",
        T0 + dt.timedelta(hours=1),
    )  # fmt: skip
    poison = (someone.encode(), b"\x00\x00\x00\x04\x4d" + b"\xff" * 40)
    last = _decision(
        settings, records.dropout_notice(age=16, **person), "dropout_notice",
        T0 + dt.timedelta(hours=2),
    )  # fmt: skip
    # Twice the same bytes too (a producer's retry); all on the person's one partition, in order.
    _publish(settings, [routed, rehandled, routed, poison, held, held, last])

    env = settings_env(settings)
    log = tmp_path / "audit-store.log"
    letters = Reader(settings, [settings.topics.deadletter], f"letters-{uuid.uuid4().hex[:8]}")
    try:
        with running(["audit-store"], env, log) as process:
            ready = AuditSettings(var_dir=settings.var_dir).ready_file

            def running_still() -> None:
                assert process.poll() is None, log.read_text()

            wait_until(ready.exists, 60, "its ready file", check=running_still)
            last_id = _event_id(last)
            listed = _wait_until_listed(settings, cpr, last_id)
            letters.wait_for(lambda seen: bool(seen), what="the poison record's dead letter")
        assert process.returncode == 0, log.read_text()[-3000:]  # SIGTERM: a clean stop
        assert not ready.exists()
    finally:
        letters.close()

    lines = listed.splitlines()
    ids = [_event_id(routed), _event_id(held), last_id]
    assert [line.split()[2] for line in lines[:-1:2]] == ids  # each once, oldest first
    assert lines[0].endswith("ROUTED") and lines[2].endswith("HELD")
    assert lines[-1] == f"3 decision(s) about pseudonym {someone[:12]}…"
    (letter,) = letters.seen
    assert letter.record["component"] == "audit-store"
    assert letter.record["error_type"].startswith("decode:")
    assert letter.record["original_value"] == poison[1]
    for text in (listed, log.read_text()):
        assert cpr not in text and cpr.replace("-", "") not in text


def _event_id(out: outputs.Output) -> str:
    from schemas import decode

    assert out.value is not None
    return str(decode(out.value).record["event_id"])


def test_an_erasure_is_kept_and_audit_marks_the_decisions_before_it_as_erased(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from bus.erasure.fact import Erasure
    from bus.erasure.record import erasure_record

    settings = fresh_bus(kafka_bootstrap, "audit-erase", tmp_path)
    cpr = synthetic_cpr(random.Random(12), dt.date(2008, 5, 6))
    someone = pseudonym(cpr, settings.pseudonym_key())
    before = _decision(settings, records.dropout_notice(age=17, pseudonym=someone),
                       "dropout_notice", T0)  # fmt: skip
    erased_at = T0 + dt.timedelta(days=1)
    erasure = erasure_record(
        settings.topics.erasures,
        Erasure(someone, erased_at, "request 2026-17, GDPR art. 17", "admin", "dpo@host", 2),
    )
    after = _decision(settings, records.dropout_notice(age=17, pseudonym=someone),
                      "dropout_notice", erased_at + dt.timedelta(days=1))  # fmt: skip
    producer = Producer(settings.producer_config())
    for out in (before, after, erasure):
        producer.produce(out.topic, key=out.key, value=out.value)
    assert producer.flush(30) == 0

    with running(["audit-store"], settings_env(settings), tmp_path / "audit-store.log"):

        def listed() -> str:
            answer = _audit(settings, cpr)
            return answer.stdout if "ERASED by" in answer.stdout else ""

        shown = wait_until(listed, 60, "the erasure listed by `ungebus audit`", every_s=0.5)

    lines = shown.splitlines()
    first = lines.index(next(line for line in lines if _event_id(before) in line))
    assert lines[first + 2].strip().startswith("personal data: ERASED")
    later = lines.index(next(line for line in lines if _event_id(after) in line))
    assert not lines[later + 2].strip().startswith("personal data")  # decided after it
    erased_line = next(line for line in lines if "ERASED by" in line)
    assert erased_line.endswith("ERASED by dpo@host (admin): request 2026-17, GDPR art. 17")
    assert "2 data key(s) destroyed" in shown
    assert cpr not in shown
