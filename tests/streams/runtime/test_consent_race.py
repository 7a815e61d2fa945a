"""A consent withdrawn, then an event: for 200 people at once, never routed on the withdrawal.

Each person's municipality sends, over the partner API and each answered 202 before the next
is sent: a handover of an adult who moved (held: it needs the consent 'adult_relocation'),
the consent (the held handover is routed), the consent's withdrawal, and a second handover.
The second handover must be held, every time: the bus accepted the withdrawal before it. Two
hundred people go at once, so their records interleave on the broker as a busy day's would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bus.demo_partners import TOKENS_FILE, load_or_create_partners
from connectors.http_api import create_app
from connectors.server import serving
from connectors.settings import ConnectorSettings
from schemas.synthetic import birth_date_for_age, synthetic_cpr
from tests.support.harness import Reader, Seen, fresh_bus, running, settings_env

pytestmark = pytest.mark.integration

PEOPLE = 200
AT_ONCE = 25


def _person(rng: random.Random, now: dt.datetime) -> dict[str, Any]:
    born = birth_date_for_age(rng, now.date(), rng.randint(19, 28))
    return {"cpr": synthetic_cpr(rng, born), "residence_kommunekode": "161"}


def _handover(subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "subject": subject,
        "from_kommunekode": "153",
        "to_kommunekode": "161",
        "reason": "relocation",
        "active_measures": [],
        "hand_over_by": (dt.date.today() + dt.timedelta(days=10)).isoformat(),
    }


def _consent(subject: dict[str, Any], consent_id: str, granted: bool) -> dict[str, Any]:
    body = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "subject": subject,
        "consent_id": consent_id,
        "purpose": "adult_relocation",
        "recipient_unit": "youth_unit",
        "recipient_kommunekode": "161",
    }
    if not granted:
        return body | {"withdrawn_by": "young_person"}
    valid_until = (dt.date.today() + dt.timedelta(days=200)).isoformat()
    return body | {"given_by": "young_person", "valid_until": valid_until,
                   "evidence_reference": "DOK-1"}  # fmt: skip


async def _one_person(
    http: httpx.AsyncClient, token: str, subject: dict[str, Any], gate: asyncio.Semaphore
) -> tuple[str, str]:
    """The four records in order, each acknowledged before the next; (first, second) ids."""
    consent_id = f"consent-{uuid.uuid4()}"
    steps = [
        ("handover_municipality", _handover(subject)),
        ("consent_granted", _consent(subject, consent_id, granted=True)),
        ("consent_withdrawn", _consent(subject, consent_id, granted=False)),
        ("handover_municipality", _handover(subject)),
    ]
    async with gate:
        for kind, body in steps:
            response = await http.post(
                f"/v1/events/{kind}", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 202, response.text
    return steps[0][1]["event_id"], steps[3][1]["event_id"]


async def _send_all(url: str, token: str, subjects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    gate = asyncio.Semaphore(AT_ONCE)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        return await asyncio.gather(*(_one_person(http, token, s, gate) for s in subjects))


def test_an_event_sent_after_a_withdrawal_is_never_routed_on_the_withdrawn_consent(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    bus = fresh_bus(kafka_bootstrap, "race", tmp_path)
    # a busy test machine can take seconds to answer; the order is what is tested here
    settings = ConnectorSettings(**bus.model_dump(exclude={"pseudonym_secret"}), ack_timeout_s=30)
    _partners, tokens_file = load_or_create_partners(settings)
    assert tokens_file is not None
    token = tomllib.loads((tmp_path / TOKENS_FILE).read_text())["demo-kommuner"]
    topics = bus.topics
    reader = Reader(bus, [topics.audit_routing, topics.tasks("161", "youth_unit")], unique("chk"))
    rng = random.Random(15)
    now = dt.datetime.now(dt.UTC)
    subjects = [_person(rng, now) for _ in range(PEOPLE)]
    log = tmp_path / "router.log"
    env = settings_env(bus)
    with running(["streams", "--role", "router", "--loglevel", "warn"], env, log) as router:
        app = create_app(settings, load_or_create_partners(settings)[0])
        with serving(app, settings) as url:
            pairs = asyncio.run(_send_all(url, token, subjects))
        firsts, seconds = {first for first, _ in pairs}, {second for _, second in pairs}

        def everything_decided(seen: list[Seen]) -> bool:
            decided = {r.record["event_id"] for r in seen if r.name == "routing_decision"}
            tasks = {r.record["event_id"] for r in seen if r.name == "routed_task"}
            return seconds <= decided and firsts <= tasks  # (two topics: read apart)

        seen = reader.wait_for(
            everything_decided,
            timeout=240,
            what=f"the {PEOPLE} first handovers routed and the {PEOPLE} second ones decided",
        )
        assert router.poll() is None, log.read_text()[-3000:]
    reader.close()

    routed = {r.record["event_id"] for r in seen if r.name == "routed_task"}
    violations = sorted(seconds & routed)
    assert violations == [], f"{len(violations)} of {PEOPLE} routed on a withdrawn consent"
    decided = {
        r.record["event_id"]: r.record["decision"] for r in seen if r.name == "routing_decision"
    }
    assert {decided[second] for second in seconds} == {"held"}
    assert firsts <= routed  # the first handover of each person, when the consent came
