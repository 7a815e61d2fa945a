"""The partner HTTP API on a real uvicorn against the real broker.

A 202 means the event is in Kafka: these tests read the exact records back from the topics.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bus.partners import load_partners
from bus.ports import free_ports
from connectors.http_api import create_app
from connectors.server import serving
from connectors.tls import certificate_fingerprint
from deploy.local.broker import LocalKafka
from tests.support.connectors_harness import (
    bearer,
    check_record,
    connector_settings,
    read_all,
)
from tests.support.kafka_login import login_fields
from tests.support.partner_payloads import partner_name, payloads, write_partners

pytestmark = pytest.mark.integration


def test_every_kind_sent_over_http_is_the_exact_record_on_its_topic(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    settings = connector_settings(kafka_bootstrap, unique("t"), tmp_path)
    by_kind = payloads(seed=21, per_kind=2)
    tokens = write_partners(tmp_path / "partners.toml", by_kind)
    app = create_app(settings, load_partners(tmp_path / "partners.toml"))
    sent: dict[str, tuple[str, dict[str, Any]]] = {}
    with serving(app, settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/openapi.json").status_code == 200
        for kind, items in by_kind.items():
            for payload in items:
                response = http.post(
                    f"/v1/events/{kind}", json=payload, headers=bearer(tokens, kind)
                )
                assert response.status_code == 202, response.text
                sent[response.json()["event_id"]] = (kind, payload)
    messages = read_all(settings)
    assert sorted(m.headers()[1][1].decode() for m in messages) == sorted(sent)
    for message in messages:
        kind, payload = sent[dict(message.headers())["ce_id"].decode()]
        check_record(message, kind, payload, settings)


def test_retries_keep_their_event_id_and_big_streamed_bodies_are_refused(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    settings = connector_settings(kafka_bootstrap, unique("t"), tmp_path, max_body_bytes=8192)
    by_kind = payloads(seed=5, per_kind=1)
    tokens = write_partners(tmp_path / "partners.toml", by_kind)
    app = create_app(settings, load_partners(tmp_path / "partners.toml"))
    headers = bearer(tokens, "dropout_notice")
    with_id = by_kind["dropout_notice"][0] | {"event_id": "0b7d2a6e-7a43-4f3c-9f55-3f1c2b7a9e01"}
    without_id = {k: v for k, v in with_id.items() if k != "event_id"}
    returned: list[str] = []
    with serving(app, settings) as url, httpx.Client(base_url=url, timeout=30) as http:

        def send(body: dict[str, Any], **extra: str) -> str:
            response = http.post("/v1/events/dropout_notice", json=body, headers=headers | extra)
            assert response.status_code == 202, response.text
            returned.append(response.json()["event_id"])
            return returned[-1]

        assert send(with_id) == send(with_id) == with_id["event_id"]
        derived = send(without_id)
        assert send(without_id) == derived != with_id["event_id"]
        keyed = send(without_id, **{"Idempotency-Key": "export-17"})
        assert send(without_id, **{"Idempotency-Key": "export-17"}) == keyed
        assert keyed not in (with_id["event_id"], derived)

        def endless() -> Iterator[bytes]:
            while True:
                yield b" " * 4096

        too_big = http.post("/v1/events/dropout_notice", content=endless(), headers=headers)
        assert too_big.status_code == 413
        assert http.post("/v1/events/dropout_notice", json=with_id).status_code == 401
    # Every 202 is one record; a retry is a record with the same id, which the router drops.
    ids = [dict(m.headers())["ce_id"].decode() for m in read_all(settings)]
    assert Counter(ids) == Counter(returned)


def test_broker_outage_is_a_prompt_503_and_every_202_is_stored_exactly_once(
    unique: Callable[[str], str], tmp_path: Path
) -> None:
    port, controller_port = free_ports(2)
    broker = LocalKafka(
        home=tmp_path / "kafka", port=port, controller_port=controller_port, heap="384m"
    )
    broker.up(echo=lambda _msg: None)
    try:
        settings = connector_settings(
            broker.bootstrap_servers,
            unique("t"),
            tmp_path,
            ack_timeout_s=1.5,
            retry_after_s=3,
            **login_fields(broker),  # its own broker, not the session's
        )
        by_kind = payloads(seed=9, per_kind=2)
        tokens = write_partners(tmp_path / "partners.toml", by_kind)
        events = [
            (kind, payload | {"event_id": f"00000000-0000-4000-8000-{i:012d}"})
            for i, (kind, payload) in enumerate(
                (kind, payload) for kind, items in by_kind.items() for payload in items
            )
        ]
        acked: list[str] = []
        refused: list[str] = []
        app = create_app(settings, load_partners(tmp_path / "partners.toml"))
        with serving(app, settings) as url, httpx.Client(base_url=url, timeout=30) as http:

            def post(kind: str, payload: dict[str, Any], timeout: float = 30) -> httpx.Response:
                return http.post(
                    f"/v1/events/{kind}",
                    json=payload,
                    headers=bearer(tokens, kind),
                    timeout=timeout,
                )

            def post_until_stored(kind: str, payload: dict[str, Any]) -> None:
                # A partner's retry on 503 (Retry-After): a connector's first records wait for
                # its login and producer id, which on a loaded machine can outlast 1.5 s.
                deadline = time.monotonic() + 60
                while (response := post(kind, payload)).status_code != 202:
                    assert response.status_code == 503 and time.monotonic() < deadline
                acked.append(payload["event_id"])

            for kind, payload in events[:5]:
                post_until_stored(kind, payload)

            broker.down(echo=lambda _msg: None)
            # With the broker gone each request is answered once its ack timeout has passed: a
            # request left hanging would outlast the generous client timeout (httpx raises).
            for kind, payload in events[5:7]:
                response = post(kind, payload, timeout=settings.ack_timeout_s + 15)
                assert response.status_code == 503, response.text
                assert "cannot store events right now" in response.json()["detail"], response.text
                assert response.headers["Retry-After"] == "3"
                refused.append(payload["event_id"])

            broker.up(echo=lambda _msg: None)
            for kind, payload in events[7:]:
                post_until_stored(kind, payload)
        ids = Counter(dict(m.headers())["ce_id"].decode() for m in read_all(settings))
        assert {event_id: ids[event_id] for event_id in acked} == dict.fromkeys(acked, 1)
        assert not any(ids[event_id] for event_id in refused), "a 503 left a record behind"
    finally:
        broker.down(echo=lambda _msg: None)


def _openssl(command: str, cwd: Path) -> None:
    subprocess.run(["openssl", *command.split()], cwd=cwd, check=True, capture_output=True)


def make_pki(folder: Path) -> None:
    """A CA, a server certificate for 127.0.0.1, and two client certificates."""
    folder.mkdir()
    _openssl(
        "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-partner-CA "
        "-keyout ca.key -out ca.pem",
        folder,
    )
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, ext in (("server", "-extfile server.ext"), ("client", ""), ("other", "")):
        _openssl(
            f"req -newkey rsa:2048 -nodes -subj /CN={name} -keyout {name}.key -out {name}.csr",
            folder,
        )
        _openssl(
            f"x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
            f"-out {name}.pem {ext}",
            folder,
        )


def tls_client(pki: Path, name: str | None) -> ssl.SSLContext:
    """A client trusting the test CA, presenting certificate ``name`` if given."""
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if name:
        context.load_cert_chain(str(pki / f"{name}.pem"), str(pki / f"{name}.key"))
    return context


def _fingerprint(pem_file: Path) -> str:
    return certificate_fingerprint(ssl.PEM_cert_to_DER_cert(pem_file.read_text()))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_partner_can_authenticate_with_a_client_certificate(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    pki = tmp_path / "pki"
    make_pki(pki)
    settings = connector_settings(
        kafka_bootstrap,
        unique("t"),
        tmp_path,
        tls_certfile=pki / "server.pem",
        tls_keyfile=pki / "server.key",
        tls_client_ca=pki / "ca.pem",
    )
    by_kind = payloads(seed=13, per_kind=1)
    ward = partner_name("release_planning_psychiatry")
    write_partners(
        tmp_path / "partners.toml", by_kind, **{ward: [_fingerprint(pki / "client.pem")]}
    )
    app = create_app(settings, load_partners(tmp_path / "partners.toml"))
    payload = by_kind["release_planning_psychiatry"][0]
    with serving(app, settings) as url:
        assert url.startswith("https://")
        with httpx.Client(base_url=url, verify=tls_client(pki, "client")) as http:
            assert http.get("/v1/partner").json()["name"] == ward
            response = http.post("/v1/events/release_planning_psychiatry", json=payload)
            assert response.status_code == 202, response.text
        with httpx.Client(base_url=url, verify=tls_client(pki, "other")) as http:
            assert http.get("/v1/partner").status_code == 401
        with httpx.Client(base_url=url, verify=tls_client(pki, None)) as http:
            assert http.get("/v1/partner").status_code == 401
    (message,) = read_all(settings)
    check_record(message, "release_planning_psychiatry", payload, settings)
