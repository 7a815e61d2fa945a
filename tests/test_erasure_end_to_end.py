"""Issue 20's "done when": two young people's events routed through the whole bus (HTTP
connector, router, tracker, inbox, audit store: every component a real process on the real
broker), one of them erased with ``ungebus erase``; then every store on disk — the broker's
segment files (changelogs, dead letters and the key store among them), the components' var
folder with the inbox's database and the span files — holds neither their CPR number nor
their name, nothing of theirs opens any more, and the other person's task is still in the
inbox. Before the erasure already, nothing personal lies on the broker's disk in plaintext."""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bus.settings import PROJECT_ROOT
from bus.waiting import wait_until
from consumers.inbox.caseworkers import Caseworker, add_account
from consumers.inbox.settings import InboxSettings
from deploy.local.broker import LocalKafka
from deploy.local.security import ADMIN
from deploy.local.settings import StackSettings
from deploy.local.traffic import DemoPartners
from schemas.synthetic import synthetic_cpr
from tests.support.partner_payloads import payloads, route_in_glostrup
from tests.support.stack_harness import running_stack

pytestmark = pytest.mark.integration

KIND = "dropout_notice"


@pytest.fixture(scope="module")
def bus(
    kafka_bootstrap: str, local_broker: LocalKafka | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackSettings]:
    if local_broker is None:
        pytest.skip("the erasure check reads the broker's files: it needs the project's broker")
    tmp = tmp_path_factory.mktemp("erase-e2e")
    with running_stack(
        kafka_bootstrap,
        local_broker,
        tmp,
        "erase",
    ) as settings:
        yield settings


def _young_person(settings: StackSettings) -> tuple[dict[str, Any], str, str]:
    """A dropout notice about a new synthetic person living in Glostrup: the payload, the
    unit that gets the task, its task id."""
    rng = random.Random(uuid.uuid4().int)
    born = dt.date.today() - dt.timedelta(days=365 * 17 + rng.randint(0, 300))
    payload = payloads(seed=rng.randint(0, 10_000), per_kind=1)[KIND][0]
    subject = {"cpr": synthetic_cpr(rng, born), "residence_kommunekode": "161",
               "name": f"Testa {uuid.uuid4().hex[:12]}"}  # fmt: skip
    payload = {**payload, "event_id": str(uuid.uuid4()), "subject": subject}
    route, _record = route_in_glostrup(settings.pseudonym_key(), KIND, payload)
    return payload, route.unit, route.task_id


def _ungebus(
    settings: StackSettings, broker: LocalKafka, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "UNGEBUS_TOPIC_PREFIX": settings.topic_prefix,
        "UNGEBUS_VAR_DIR": str(settings.var_dir),
        "UNGEBUS_MASTER_KEY": os.environ["UNGEBUS_MASTER_KEY"],  # the stack's, the session's
        **broker.client_env(ADMIN),
    }
    return subprocess.run(
        [sys.executable, "-m", "bus", *args], input=stdin, env=env, cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_one_person_erased_is_nowhere_on_disk_while_the_other_stays_in_the_inbox(
    bus: StackSettings, local_broker: LocalKafka
) -> None:
    (anna, unit_a, task_a), (bo, unit_b, task_b) = _young_person(bus), _young_person(bus)
    assert unit_a == unit_b
    inbox = InboxSettings(var_dir=bus.var_dir, inbox_kommunekode="161")
    caseworker = Caseworker(f"cw-{uuid.uuid4().hex[:6]}", "161", unit_a)
    token = add_account(inbox.users_file, caseworker, "pw", api_token=True)
    partners = DemoPartners.load(bus)
    for payload in (anna, bo):
        response = httpx.post(
            f"{bus.api_url}/v1/events/{KIND}", json=payload, timeout=30,
            headers={"Authorization": f"Bearer {partners.token(KIND)}"},
        )  # fmt: skip
        assert response.status_code == 202, response.text
    api = httpx.Client(
        base_url=bus.inbox_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    def listed() -> dict[str, dict[str, Any]]:
        return {t["task_id"]: t for t in api.get("/api/tasks").json()["tasks"]}

    wait_until(lambda: {task_a, task_b} <= listed().keys(), 90, "both tasks in the inbox")
    assert anna["subject"]["name"] in str(listed()[task_a])  # the caseworker sees who it is

    cpr, name = anna["subject"]["cpr"], anna["subject"]["name"]
    broker_disk = str(local_broker.home / "data")
    before = _ungebus(bus, local_broker, "erase-verify", cpr, "--text", name,
                      "--scan", broker_disk)  # fmt: skip
    assert "FOUND" not in before.stdout, before.stdout  # sealed on the broker's disk
    assert "still open, 0 erased" in before.stdout and before.returncode == 1

    erased = _ungebus(bus, local_broker, "erase", "-", "--reason", "request 17", stdin=cpr)
    assert erased.returncode == 0, erased.stderr
    wait_until(lambda: task_a not in listed(), 60, "her task gone from the inbox")

    after = _ungebus(bus, local_broker, "erase-verify", cpr, "--text", name,
                     "--scan", broker_disk, "--scan", str(bus.var_dir))  # fmt: skip
    print(f"\nbefore the erasure:\n{before.stdout}after it:\n{after.stdout}")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "FOUND" not in after.stdout and " 0 still open" in after.stdout
    assert task_b in listed()  # the other person's task is still there, with its details
    assert bo["subject"]["name"] in str(listed()[task_b])
