"""The partner HTTP API on a real uvicorn against the real broker.

A 202 means the event is in Kafka: these tests read the exact records back from the topics.
"""

from __future__ import annotations

import re
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
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from bus.partners import load_partners
from connectors.http_api import create_app
from connectors.ingest import connector_topics, topic_for
from connectors.server import serving
from connectors.settings import ConnectorSettings
from connectors.tls import certificate_fingerprint
from deploy.local.broker import LocalKafka
from schemas import decode, parse_partner, pseudonym, to_record
from tests.conftest import free_ports
from tests.unit.test_connectors_ingest import partner_name, payloads, write_partners

TRACEPARENT = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
CE_HEADERS = {"ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_subject"}


def connector_settings(bootstrap: str, prefix: str, tmp_path: Path, **kw: Any) -> ConnectorSettings:
    return ConnectorSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix + ".",
        var_dir=tmp_path,
        partners_file=tmp_path / "partners.toml",
        **kw,
    )


def read_all(settings: ConnectorSettings, timeout_s: float = 30.0) -> list[Message]:
    """Every record now on the connectors' topics (up to each partition's high watermark)."""
    consumer = Consumer(settings.consumer_config("connectors-test-reader"))
    try:
        wanted = []
        for spec in connector_topics(settings.topics):
            for partition in range(spec.partitions):
                low, high = _watermarks(consumer, TopicPartition(spec.name, partition))
                if high > low:
                    wanted.append((TopicPartition(spec.name, partition, OFFSET_BEGINNING), high))
        consumer.assign([tp for tp, _ in wanted])
        remaining = {(tp.topic, tp.partition): high for tp, high in wanted}
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=0.5):
                assert message.error() is None, message.error()
                messages.append(message)
                where = (message.topic(), message.partition())
                if where in remaining and message.offset() + 1 >= remaining[where]:
                    del remaining[where]
        assert not remaining, f"could not read up to the end of {remaining}"
        return messages
    finally:
        consumer.close()


def _watermarks(consumer: Consumer, partition: TopicPartition) -> tuple[int, int]:
    """Low and high watermark, waiting out a new topic whose leader is still being elected."""
    deadline = time.monotonic() + 20
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=10)
            return int(low), int(high)
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def check_record(
    message: Message, kind: str, payload: dict[str, Any], settings: ConnectorSettings
) -> None:
    """The record is the exact mapping of the payload, keyed and headed by the rules."""
    key = settings.pseudonym_key()
    decoded = decode(message.value())
    event_id = decoded.record["envelope"]["event_id"]
    name, expected = to_record(parse_partner(kind, payload), key, event_id)
    assert decoded.name == name and decoded.record == expected
    if "event_id" in payload:
        assert event_id == payload["event_id"]
    assert message.topic() == topic_for(kind, settings.topics)
    subject_pseudonym = pseudonym(payload["subject"]["cpr"], key)
    assert message.key() == subject_pseudonym.encode()
    headers = dict(message.headers())
    assert CE_HEADERS | {"traceparent", "content-type"} <= set(headers)
    assert headers["ce_id"] == event_id.encode()
    assert headers["ce_subject"] == subject_pseudonym.encode()
    assert TRACEPARENT.fullmatch(headers["traceparent"])
    cpr = payload["subject"]["cpr"].replace("-", "").encode()
    for value in [message.key(), *headers.values()]:
        assert cpr not in value.replace(b"-", b""), "a CPR number in a key or header"


def bearer(tokens: dict[str, str], kind: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[partner_name(kind)]}"}


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
            broker.bootstrap_servers, unique("t"), tmp_path, ack_timeout_s=1.5, retry_after_s=3
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

            def post(kind: str, payload: dict[str, Any]) -> httpx.Response:
                return http.post(f"/v1/events/{kind}", json=payload, headers=bearer(tokens, kind))

            for kind, payload in events[:5]:
                assert post(kind, payload).status_code == 202
                acked.append(payload["event_id"])

            broker.down(echo=lambda _msg: None)
            for kind, payload in events[5:7]:
                started = time.monotonic()
                response = post(kind, payload)
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "3"
                assert time.monotonic() - started < settings.ack_timeout_s + 2
                refused.append(payload["event_id"])

            broker.up(echo=lambda _msg: None)
            for kind, payload in events[7:]:
                deadline = time.monotonic() + 60
                while (response := post(kind, payload)).status_code != 202:
                    assert response.status_code == 503 and time.monotonic() < deadline
                acked.append(payload["event_id"])
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
