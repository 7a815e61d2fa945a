"""Personal data sealed on the wire: one event posted over HTTP, every component a real process
on the real broker under its own principal. The young person's CPR number and name are in no
record value on ``inbound.events`` nor on the task topic (read raw, as anyone with a copy of
the log would), the caseworker's note is in none on ``task-acks``, while the inbox shows the
details to the caseworker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError

import schemas
from bus.crypto import is_sealed, sealed_header
from bus.records import end_offsets, read_to_ends
from bus.waiting import wait_until
from consumers.inbox.caseworkers import Caseworker, add_account
from consumers.inbox.settings import InboxSettings
from deploy.local.broker import LocalKafka
from deploy.local.settings import StackSettings
from deploy.local.traffic import DemoPartners
from tests.support.partner_payloads import payloads, route_in_glostrup
from tests.support.stack_harness import running_stack

pytestmark = pytest.mark.integration

KIND = "dropout_notice"
NOTE = "Ringede til mor, møde aftalt"


@pytest.fixture(scope="module")
def bus(
    kafka_bootstrap: str, local_broker: LocalKafka | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackSettings]:
    tmp = tmp_path_factory.mktemp("sealed")
    with running_stack(
        kafka_bootstrap,
        local_broker,
        tmp,
        "sealed",
    ) as settings:
        yield settings


def _raw(settings: StackSettings, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record on ``topic`` now, undecoded."""
    consumer = Consumer(
        settings.kafka_config(
            **{"group.id": f"raw-{uuid.uuid4().hex[:6]}", "enable.partition.eof": True}
        )
    )

    def failed(error: KafkaError, _partition: int | None) -> None:
        raise AssertionError(f"reading {topic}: {error.str()}")

    try:
        ends = end_offsets(consumer, topic, 10)
        starts = dict.fromkeys(ends, 0)
        return [
            (m.key(), m.value())
            for m in read_to_ends(consumer, topic, starts, ends, failed, deadline_s=60)
        ]
    finally:
        consumer.close()


def test_personal_data_is_sealed_on_every_topic_it_crosses_and_shows_in_the_inbox(
    bus: StackSettings,
) -> None:
    payload = payloads(seed=43, per_kind=1)[KIND][0]
    payload = {
        **payload,
        "event_id": str(uuid.uuid4()),
        "subject": {
            **payload["subject"],
            "residence_kommunekode": "161",
            "name": "Sigrid Forseglet",  # synthetic
        },
    }
    route, record = route_in_glostrup(bus.pseudonym_key(), KIND, payload)
    pseudonym = record["envelope"]["subject"]["pseudonym"]
    inbox = InboxSettings(var_dir=bus.var_dir, inbox_kommunekode="161")
    token = add_account(
        inbox.users_file,
        Caseworker(f"cw-{uuid.uuid4().hex[:6]}", "161", route.unit),
        "pw",
        api_token=True,
    )

    response = httpx.post(
        f"{bus.api_url}/v1/events/{KIND}",
        json=payload,
        headers={"Authorization": f"Bearer {DemoPartners.load(bus).token(KIND)}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text

    # The caseworker sees the young person's details: unsealed by the inbox.
    api = httpx.Client(
        base_url=bus.inbox_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    def shown() -> dict[str, Any] | None:
        answer = api.get(f"/api/tasks/{route.task_id}")
        return answer.json() if answer.status_code == 200 else None

    task = wait_until(shown, 90, "the task in the inbox", every_s=0.5)
    cpr = payload["subject"]["cpr"]
    person_name = payload["subject"]["name"]
    shown_values = [str(v) for v in task["details"].values()]
    assert any(cpr.replace("-", "") in v.replace("-", "") for v in shown_values), shown_values
    assert person_name in shown_values, shown_values
    taken = api.post(f"/api/tasks/{route.task_id}/take-over", json={"note": NOTE})
    assert taken.status_code == 200, taken.text
    assert taken.json()["taken_over"]["note"] == NOTE

    # On the wire: the person's records are sealed; their CPR and name are in no value.
    personal = [
        cpr.encode(),
        cpr.replace("-", "").encode(),
        person_name.encode(),
        NOTE.encode(),
    ]
    inbound = [(k, v) for k, v in _raw(bus, bus.topics.inbound_events) if k == pseudonym.encode()]
    tasks = [(k, v) for k, v in _raw(bus, bus.topics.tasks("161", route.unit))]
    assert len(inbound) == 1 and len(tasks) >= 1
    acks_topic = bus.topics.task_acks_of("161")

    def acked() -> list[tuple[bytes | None, bytes | None]]:
        return [(k, v) for k, v in _raw(bus, acks_topic) if k == pseudonym.encode()]

    acks = wait_until(acked, 30, "the take-over on task-acks", every_s=0.5)
    (_, sealed_event) = inbound[0]
    assert sealed_event is not None and is_sealed(sealed_event)
    assert sealed_header(sealed_event).pseudonym == pseudonym
    for topic, found in (("inbound", inbound), ("tasks", tasks), ("task-acks", acks)):
        for key, value in found:
            for secret in personal:
                assert secret not in (value or b""), f"personal data in the clear on {topic}"
                assert secret not in (key or b""), f"personal data in a key on {topic}"
    (_, ack_value) = acks[0]
    assert ack_value is not None
    ack = schemas.decode(ack_value).record
    assert ack["note"] is None and ack["sealed_note"] is not None
    (_, task_value) = tasks[0]
    assert task_value is not None
    sealed_task = schemas.decode(task_value).record
    assert sealed_task["details"] == {} and sealed_task["sealed_details"] is not None
