"""The partner API's answers that need no broker: 401, 403, 413, 422, 404, the OpenAPI."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bus.partners import load_partners
from connectors.http_api import create_app
from connectors.ingest import IDEMPOTENCY_KEY_SCHEMA as IDEMPOTENCY_KEY
from connectors.ingest import idempotency_key_error
from connectors.settings import ConnectorSettings
from schemas import PARTNER_KINDS, PARTNER_MODELS
from tests.support.partner_payloads import partner_name, payloads, write_partners

BY_KIND = payloads(seed=3, per_kind=1)


@pytest.fixture
def tokens(tmp_path: Path) -> dict[str, str]:
    return write_partners(tmp_path / "partners.toml", BY_KIND)


class Client:
    """Requests straight into the ASGI app. No lifespan runs, so no Kafka: none is needed for
    these answers (they are all given before anything is published)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture
def client(tmp_path: Path, tokens: dict[str, str]) -> Client:
    settings = ConnectorSettings(
        var_dir=tmp_path, partners_file=tmp_path / "partners.toml", max_body_bytes=4096
    )
    return Client(create_app(settings, load_partners(settings.resolved_partners_file())))


def auth(tokens: dict[str, str], kind: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[partner_name(kind)]}"}


def test_no_or_a_bad_credential_is_401(client: Client, tokens: dict[str, str]) -> None:
    body = BY_KIND["dropout_notice"][0]
    none = client.post("/v1/events/dropout_notice", json=body)
    assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer"
    bad = client.post(
        "/v1/events/dropout_notice", json=body, headers={"Authorization": "Bearer guess"}
    )
    assert bad.status_code == 401 and "bad credential" in bad.json()["detail"]
    me = client.get("/v1/partner", headers=auth(tokens, "dropout_notice"))
    assert me.json()["name"] == "p-dropout-notice"


def test_a_school_cannot_send_prison_events_or_claim_another_school(
    client: Client, tokens: dict[str, str]
) -> None:
    school = auth(tokens, "school_absence_signal")
    prison_event = BY_KIND["release_planning_prison"][0]
    wrong_kind = client.post(
        "/v1/events/release_planning_prison", json=prison_event, headers=school
    )
    assert wrong_kind.status_code == 403
    assert wrong_kind.json()["errors"][0]["code"] == "kind_not_allowed"
    other_school = {**BY_KIND["school_absence_signal"][0], "institution_number": "916799"}
    wrong_source = client.post(
        "/v1/events/school_absence_signal", json=other_school, headers=school
    )
    assert wrong_source.status_code == 403
    assert wrong_source.json()["errors"][0]["field"] == "institution_number"


def test_invalid_bodies_are_422_with_field_errors_and_no_cpr(
    client: Client, tokens: dict[str, str]
) -> None:
    good = BY_KIND["dropout_notice"][0]
    bad = {**good, "subject": {**good["subject"], "cpr": "3102091234"}, "status": "gone"}
    response = client.post(
        "/v1/events/dropout_notice", json=bad, headers=auth(tokens, "dropout_notice")
    )
    assert response.status_code == 422
    fields = {e["field"]: e["reason"] for e in response.json()["errors"]}
    assert set(fields) == {"subject.cpr", "status"}
    assert "3102091234" not in response.text and "310209" not in response.text
    garbage = client.post(
        "/v1/events/dropout_notice", content=b"{not json", headers=auth(tokens, "dropout_notice")
    )
    assert garbage.status_code == 422
    assert garbage.json()["errors"][0]["reason"] == "the payload is not valid JSON"
    key = client.post(
        "/v1/events/dropout_notice",
        json=good,
        headers={**auth(tokens, "dropout_notice"), "Idempotency-Key": "x" * 300},
    )
    assert key.status_code == 422 and key.json()["errors"][0]["field"] == "Idempotency-Key"


def test_a_body_over_the_limit_is_413_declared_or_streamed(
    client: Client, tokens: dict[str, str]
) -> None:
    headers = auth(tokens, "dropout_notice")
    big = json.dumps({"padding": "x" * 5000}).encode()
    declared = client.post("/v1/events/dropout_notice", content=big, headers=headers)
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    streamed = client.post("/v1/events/dropout_notice", content=chunks(), headers=headers)
    assert streamed.status_code == 413 and "4096 bytes" in streamed.json()["detail"]


def test_an_unknown_kind_is_404_naming_the_known_ones(client: Client) -> None:
    response = client.post("/v1/events/prison_break", json={})
    assert response.status_code == 404 and "dropout_notice" in response.json()["detail"]


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        ("retry-42", True),
        ("x" * 200, True),
        (" spaced key ", True),  # HTTP trims the ends; the rest is the key
        ("", False),
        ("   ", False),
        ("x" * 201, False),
        ("tab\there", False),
        ("nøgle", False),
    ],
)
def test_the_idempotency_key_rule_is_the_documented_one(key: str, accepted: bool) -> None:
    """What the OpenAPI document declares for the header is what the handler accepts."""
    documented = re.fullmatch(IDEMPOTENCY_KEY["pattern"], key) is not None and (
        IDEMPOTENCY_KEY["minLength"] <= len(key) <= IDEMPOTENCY_KEY["maxLength"]
    )
    assert documented is accepted
    assert (idempotency_key_error(key.strip(" \t")) is None) is accepted


def test_every_error_has_the_one_error_body(client: Client, tokens: dict[str, str]) -> None:
    answers = [
        client.post("/v1/events/dropout_notice", json={}),  # 401
        client.post("/v1/events/prison_break", json={}),  # 404
        client.get("/v1/events/dropout_notice"),  # 405, FastAPI's own
        client.post(
            "/v1/events/dropout_notice", content=b"\xff{", headers=auth(tokens, "dropout_notice")
        ),  # 422
    ]
    assert [a.status_code for a in answers] == [401, 404, 405, 422]
    for answer in answers:
        assert set(answer.json()) == {"detail", "errors"}, answer.text
        assert answer.headers["content-type"] == "application/json"
    assert answers[2].headers["allow"] == "POST"


def test_openapi_has_a_typed_body_per_kind_and_bearer_security(client: Client) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for kind in PARTNER_KINDS:
        operation = document["paths"][f"/v1/events/{kind}"]["post"]
        content = operation["requestBody"]["content"]["application/json"]
        ref = content["schema"]["$ref"].rsplit("/", 1)[-1]
        assert ref == PARTNER_MODELS[kind].__name__
        assert "subject" in schemas[ref]["properties"]
        assert {"202", "401", "403", "413", "422", "503"} <= set(operation["responses"])
        assert operation["security"] == [{"partnerToken": []}, {"clientCertificate": []}]
        assert PARTNER_MODELS[kind].model_validate_json(json.dumps(content["example"]))
        headers = {p["name"]: p["schema"] for p in operation["parameters"]}
        assert headers["Idempotency-Key"] == {**headers["Idempotency-Key"], **IDEMPOTENCY_KEY}
        assert headers["traceparent"]["type"] == "string"
        errors = {s: r for s, r in operation["responses"].items() if s != "202"}
        assert {r["content"]["application/json"]["schema"]["$ref"] for r in errors.values()} == {
            "#/components/schemas/ErrorBody"
        }
        assert errors["503"]["headers"]["Retry-After"]["required"] is True
    assert set(document["components"]["securitySchemes"]) == {"partnerToken", "clientCertificate"}
    for ref in json.dumps(document).split('"$ref": "')[1:]:
        assert ref.split('"')[0].rsplit("/", 1)[-1] in schemas
    assert client.get("/docs").status_code == 200
