"""The dev stack's summary and sample traffic read the router's decisions by their fields
(``routing_decision`` v2: each hold's purpose, unit and municipality), never by the wording of
the reason text: the consents the demo records are the ones the decision records name."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

import schemas
from deploy.local.stack import StackSettings
from deploy.local.summary import Awaited, Decided, Tally
from deploy.local.traffic import DemoPartners, Feeder
from deploy.local.watch import TopicWatcher
from schemas.synthetic import synthetic_cpr
from streams.routing import outputs
from streams.routing.consent import ConsentState
from streams.routing.decide import Decision, InboundEvent, decide
from streams.routing.policy import load_policy
from tests.support import records
from tests.support.records import OCCURRED

POLICY = load_policy()
NOW = OCCURRED + dt.timedelta(minutes=5)
KEY = b"summary-test-pseudonym-key"
CPR = synthetic_cpr(random.Random(16), dt.date(2010, 3, 14))  # records.envelope's birth date
PSEUDONYM = schemas.pseudonym(CPR, KEY)
SUBJECT = {"cpr": CPR, "name": "Test Testesen", "residence_kommunekode": "161"}


def _decided(name: str, record: dict[str, Any]) -> tuple[Decision, bytes]:
    """The router's decision on ``record`` and its audit record as the router writes it."""
    event = InboundEvent(name, record)
    decision = decide(event, ConsentState(), POLICY, NOW)
    out = outputs.audit(
        "audit.routing", event, decision.outcome, decision.routes, decision.reason, decision,
        POLICY, NOW, None,
    )  # fmt: skip
    assert out.value is not None
    return decision, out.value


def _tally(*values: bytes) -> Tally:
    tally = Tally()
    for value in values:
        name, _version, record = schemas.decode(value)
        tally.add(name, record)
    return tally


def _discharge() -> tuple[Decision, bytes]:
    """Held: social services routed, the jobcentre's mentor waits for a consent."""
    record = records.release_planning("psychiatric_ward", pseudonym=PSEUDONYM)
    decision, value = _decided("release_planning", record)
    assert decision.outcome == "held" and decision.holds and decision.routes
    return decision, value


def test_a_held_event_awaits_the_consents_its_decision_record_names() -> None:
    decision, value = _discharge()
    tally = _tally(value)
    assert tally.held() == {
        decision.event_id: Decided(
            "held",
            PSEUDONYM,
            tuple(Awaited(h.purpose, h.unit, h.kommunekode) for h in decision.holds),
        )
    }
    assert tally.held()[decision.event_id].awaiting == (
        Awaited("discharge_mentor", "jobcentre", "161"),
    )
    assert tally.outcomes()["held"] == 1
    assert sum(tally.routes.values()) == len(decision.routes)


def test_the_reason_text_is_not_read() -> None:
    decision, value = _discharge()
    _name, _version, record = schemas.decode(value)
    reworded = schemas.encode("routing_decision", {**record, "reason": "anders formuleret"})
    assert _tally(reworded).held() == _tally(value).held()
    assert _tally(reworded).held()[decision.event_id].awaiting


def test_a_v1_decision_is_counted_and_awaits_nothing_it_cannot_name() -> None:
    decision, value = _discharge()
    as_v1 = schemas.decode(value, version=1).record
    tally = _tally(schemas.encode_version("routing_decision", 1, as_v1))
    assert tally.held() == {decision.event_id: Decided("held", PSEUDONYM, ())}
    assert tally.render(now=dt.datetime(2026, 11, 2)) == _tally(value).render(
        now=dt.datetime(2026, 11, 2)
    )


def test_routed_and_purged_decisions_await_nothing() -> None:
    routed, routed_value = _decided("dropout_notice", records.dropout_notice(pseudonym=PSEUDONYM))
    assert routed.outcome == "routed"
    tally = _tally(routed_value)
    assert tally.decided[routed.event_id] == Decided("routed", PSEUDONYM, ())
    assert tally.held() == {}


@pytest.fixture
def feeder(tmp_path: Path) -> Iterator[tuple[Feeder, list[httpx.Request]]]:
    """A feeder whose partner API answers 202 to everything, keeping what it was sent."""
    sent: list[httpx.Request] = []

    def accept(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(202)

    settings = StackSettings(var_dir=tmp_path, pseudonym_secret=KEY.decode())
    partners = DemoPartners({"consent_granted": "demo-kommune"}, {"demo-kommune": "t0ken"})
    feeder = Feeder(settings, partners, cast(TopicWatcher, None))  # no watcher: not read here
    feeder.client.close()
    feeder.client = httpx.Client(base_url=settings.api_url, transport=httpx.MockTransport(accept))
    yield feeder, sent
    feeder.close()


def test_releasing_a_hold_records_the_consent_each_hold_awaits(
    feeder: tuple[Feeder, list[httpx.Request]],
) -> None:
    client, sent = feeder
    decision, value = _discharge()
    released = client.release_holds(_tally(value).held(), [SUBJECT])
    assert released == {decision.event_id}
    assert [r.url.path for r in sent] == ["/v1/events/consent_granted"] * len(decision.holds)
    assert {r.headers["authorization"] for r in sent} == {"Bearer t0ken"}
    consents = [json.loads(r.content) for r in sent]
    assert [(c["purpose"], c["recipient_unit"], c["recipient_kommunekode"]) for c in consents] == [
        (h.purpose, h.unit, h.kommunekode) for h in decision.holds
    ]
    assert all(c["subject"] == SUBJECT for c in consents)


def test_every_hold_of_an_event_gets_its_consent_and_unknown_people_none(
    feeder: tuple[Feeder, list[httpx.Request]],
) -> None:
    client, sent = feeder
    two = (Awaited("discharge_mentor", "jobcentre", "161"), Awaited("x", "ssp", "165"))
    held = {
        "e-1": Decided("held", PSEUDONYM, two),
        "e-2": Decided("held", "b2" * 32, two),  # skipped: every other event is released
        "e-3": Decided("held", "c3" * 32, two),  # nobody in the sample day has this pseudonym
    }
    assert client.release_holds(held, [SUBJECT]) == {"e-1"}
    consents = [json.loads(r.content) for r in sent]
    assert [(c["purpose"], c["recipient_unit"], c["recipient_kommunekode"]) for c in consents] == [
        ("discharge_mentor", "jobcentre", "161"),
        ("x", "ssp", "165"),
    ]
