"""Both HTTP APIs say what they do: schemathesis fuzzes each from its own OpenAPI document.

The partner API and the inbox run as they do in production (uvicorn, the real broker, valid
credentials declared per security scheme); schemathesis (its CLI, as a partner's developer
would run it) generates requests from ``/openapi.json`` and ``/api/openapi.json`` in every
phase (the documents' examples, boundary values, random data, and for the inbox call
sequences that follow task ids from one answer into the next request) and fails on a server
error, a status code or header the document does not list, a body or content type that does
not match it, invalid data accepted, auth that is declared but not enforced, and (our own
check, ``contract_checks``) a valid parameter refused.

Bounded and repeatable: deterministic generation (the same requests every run), a fixed number
of examples per operation, one worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bus.partners import load_partners, render_partner, token_sha256
from bus.settings import PROJECT_ROOT
from connectors.http_api import create_app
from connectors.openapi import example_payload
from connectors.server import serving
from connectors.settings import ConnectorSettings
from consumers.inbox.settings import InboxSettings
from schemas import PARTNER_KINDS
from tests.support.inbox_harness import (
    RunningInbox,
    api_tasks,
    escalation,
    inbox_settings,
    person,
    publish,
    publish_task,
    routed_task,
    running_inbox,
    sign_in,
    wait_until,
)
from tests.support.partner_payloads import source_of

pytestmark = pytest.mark.integration

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Every check schemathesis has, but its positive_data_acceptance (see contract_checks).
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]


def common_config(max_examples: int) -> str:
    return f"""
hooks = "tests.support.contract_checks"
workers = 1
# A slow answer is not a broken contract: on this 2-core machine under a full test run one
# 422 once took 21.8 s, past schemathesis' default 10 s request timeout (a timeout fails the
# run). Speed is measured in `make bench`, never in a test.
request-timeout = 60

[cache]
enabled = false  # no replay of an earlier run's failures: every run is the same run

[warnings]  # credentials that the document does not use, or that never work, fail the run
fail-on = ["missing_auth", "unused_openapi_auth", "unresolvable_reference", "unsupported_regex"]

[generation]
deterministic = true
max-examples = {max_examples}
database = "none"
"""


@dataclass(frozen=True)
class Run:
    """What schemathesis did: its exit code, its console output and its JSON report."""

    returncode: int
    output: str
    report: dict[str, Any]

    def accepted(self, operation: str) -> int:
        """How many requests to ``operation`` the server answered with success."""
        phases = self.report["valid_rates"].get(operation, {})
        return sum(int(phase.get("accepted", 0)) for phase in phases.values())


def schemathesis(
    schema_url: str, config: str, tmp_path: Path, name: str, env: dict[str, str]
) -> Run:
    config_file = tmp_path / f"{name}.toml"
    config_file.write_text(config)
    report = tmp_path / f"{name}.report.json"
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config_file),
        "--no-color",
        "run",
        schema_url,
        *CHECKS,
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    done = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert report.exists(), f"schemathesis wrote no report:\n{output[-6000:]}"
    return Run(done.returncode, output, json.loads(report.read_text()))


def check_passed(run: Run) -> None:
    """Fail with what schemathesis printed: each failure, its answer and a curl to replay it."""
    if run.returncode != 0 or run.report["failures"] or run.report["errors"]:
        pytest.fail(
            f"schemathesis found answers the document does not allow:\n{run.output[-15000:]}"
        )


# -- the partner API ---------------------------------------------------------------------------


@pytest.fixture
def partner_api(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> Iterator[tuple[str, str]]:
    """The partner API on a free port; one partner that may send every kind, for the sources
    of the document's examples (so each example is accepted). Yields (URL, token)."""
    token = "contract-" + unique("token").rsplit(".", 1)[-1]
    sources = sorted({source_of(kind, example_payload(kind)) for kind in PARTNER_KINDS})
    partners = tmp_path / "partners.toml"
    partners.write_text(
        render_partner("contract", PARTNER_KINDS, sources, token_hash=token_sha256(token))
    )
    settings = ConnectorSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=unique("t") + ".",
        var_dir=tmp_path,
        partners_file=partners,
    )
    with serving(create_app(settings, load_partners(partners)), settings) as url:
        yield url, token


def test_the_partner_api_does_what_its_document_says(
    partner_api: tuple[str, str], tmp_path: Path
) -> None:
    url, token = partner_api
    config = common_config(max_examples=40) + (
        '\n[auth.openapi.partnerToken]\nbearer = "${UNGEBUS_CONTRACT_PARTNER_TOKEN}"\n'
    )
    run = schemathesis(
        f"{url}/openapi.json",
        config,
        tmp_path,
        "partner",
        {"UNGEBUS_CONTRACT_PARTNER_TOKEN": token},
    )
    check_passed(run)
    for kind in PARTNER_KINDS:  # the credential worked: every kind's example was stored
        assert run.accepted(f"POST /v1/events/{kind}") >= 1, (kind, run.report["valid_rates"])
    assert run.accepted("GET /v1/partner") >= 1


# -- the inbox API -----------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxCredentials:
    token: str
    session_cookie: str
    csrf: str
    task_ids: list[str]  # the caller's own, another caseworker's, another unit's


@pytest.fixture
def inbox(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> Iterator[tuple[RunningInbox, InboxCredentials]]:
    """The inbox with tasks in the caller's unit (one escalated, one taken over by someone
    else) and one in another unit, a caseworker with an API token and a signed-in session."""
    settings: InboxSettings = inbox_settings(kafka_bootstrap, unique, tmp_path)
    own = [routed_task(person(70 + i)) for i in range(3)]
    others = routed_task(person(74))
    jobcentre = routed_task(person(75), unit="jobcentre")
    for task in [*own, others, jobcentre]:
        publish_task(settings, task)
    publish(
        settings,
        settings.topics.escalations("161", "youth_unit"),
        "task_escalated",
        escalation(own[0]),
    )
    with running_inbox(settings) as running, running.client() as client:
        token = running.add_caseworker("yu-contract", "youth_unit", password="contract pw 1")
        colleague = running.add_caseworker("yu-colleague", "youth_unit")
        wait_until(lambda: len(api_tasks(client, token)) == 4, "the four youth-unit tasks")
        taken = client.post(
            f"/api/tasks/{others['task_id']}/take-over",
            headers={"Authorization": f"Bearer {colleague}"},
        )
        assert taken.status_code == 200, taken.text
        csrf = sign_in(client, "yu-contract", "contract pw 1")
        cookie = client.cookies["ungebus_inbox"]
        task_ids = [t["task_id"] for t in [*own, others, jobcentre]]
        yield running, InboxCredentials(token, cookie, csrf, task_ids)


def inbox_config(max_examples: int, task_ids: list[str], auth: str) -> str:
    """Task ids from a dictionary half the time (so take-overs succeed, conflict and miss),
    generated ones the other half."""
    return (
        common_config(max_examples)
        + f"""
[dictionaries.tasks]
values = {json.dumps(task_ids)}

[parameters]
"path.task_id" = {{ dictionary = "tasks", probability = 0.5 }}
"""
        + auth
    )


def test_the_inbox_api_does_what_its_document_says(
    inbox: tuple[RunningInbox, InboxCredentials], tmp_path: Path
) -> None:
    running, credentials = inbox
    schema_url = f"{running.url}/api/openapi.json"
    bearer = '\n[auth.openapi.bearerToken]\nbearer = "${UNGEBUS_CONTRACT_INBOX_TOKEN}"\n'
    run = schemathesis(
        schema_url,
        inbox_config(50, credentials.task_ids, bearer),
        tmp_path,
        "inbox-bearer",
        {"UNGEBUS_CONTRACT_INBOX_TOKEN": credentials.token},
    )
    check_passed(run)
    for operation in ("GET /api/tasks", "GET /api/tasks/{task_id}", "GET /api/escalations"):
        assert run.accepted(operation) >= 1, (operation, run.report["valid_rates"])
    assert run.accepted("POST /api/tasks/{task_id}/take-over") >= 1

    # The same document with the other credential: a signed-in session, CSRF header on POST.
    session = (
        '\n[auth.openapi.session]\napi_key = "${UNGEBUS_CONTRACT_INBOX_SESSION}"\n'
        '\n[auth.openapi.csrfToken]\napi_key = "${UNGEBUS_CONTRACT_INBOX_CSRF}"\n'
    )
    run = schemathesis(
        schema_url,
        inbox_config(20, credentials.task_ids, session),
        tmp_path,
        "inbox-session",
        {
            "UNGEBUS_CONTRACT_INBOX_SESSION": credentials.session_cookie,
            "UNGEBUS_CONTRACT_INBOX_CSRF": credentials.csrf,
        },
    )
    check_passed(run)
    assert run.accepted("GET /api/tasks") >= 1 and run.accepted("GET /api/escalations") >= 1
    cookies = {"ungebus_inbox": credentials.session_cookie}
    with httpx.Client(base_url=running.url, cookies=cookies) as client:
        assert client.get("/api/tasks").is_success  # the session is still good
