"""Connectors seal every inbound value with the person's data key; no broker needed here."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from bus.crypto import DataKey, MemoryKeyring, is_sealed, sealed_header, unseal
from bus.keystore import KeyStoreError
from bus.partners import load_partners
from bus.topics import Topics
from connectors.files import FileDrop
from connectors.http_api import create_app
from connectors.ingest import Outgoing, prepare, sealed
from connectors.publisher import KafkaPublisher
from connectors.settings import ConnectorSettings
from schemas import encode, parse_partner, pseudonym, to_record
from tests.support.partner_payloads import partner_name, payloads, write_partners

BY_KIND = payloads(seed=5, per_kind=1)
KEY = b"sealing-test-pseudonym-key"
KIND = "dropout_notice"


def _prepared(tmp_path: Path) -> Outgoing:
    write_partners(tmp_path / "partners.toml", BY_KIND)
    partner = load_partners(tmp_path / "partners.toml").get(partner_name(KIND))
    assert partner is not None
    out = prepare(partner, KIND, BY_KIND[KIND][0], pseudonym_key=KEY, topics=Topics("t."))
    assert isinstance(out, Outgoing)
    return out


def test_a_sealed_record_keeps_its_key_and_headers_and_hides_the_person(tmp_path: Path) -> None:
    plain = _prepared(tmp_path)
    keyring = MemoryKeyring()
    out = sealed(plain, keyring)
    assert is_sealed(out.value)
    assert (out.key, out.headers, out.topic, out.event_id) == (
        plain.key, plain.headers, plain.topic, plain.event_id,
    )  # fmt: skip
    subject = BY_KIND[KIND][0]["subject"]
    assert subject["cpr"].replace("-", "").encode() not in out.value.replace(b"-", b"")
    assert subject["name"].encode() not in out.value
    assert sealed_header(out.value).pseudonym == pseudonym(subject["cpr"], KEY)
    name, record = to_record(parse_partner(KIND, BY_KIND[KIND][0]), KEY, plain.event_id)
    assert unseal(keyring, out.value) == plain.value == encode(name, record)


class NoKeyStore:
    """A key store that does not answer."""

    def sealing_key(self, pseudonym: str) -> DataKey:
        raise KeyStoreError(f"the key store t.keys did not take key {pseudonym}:00: timed out")

    def key(self, pseudonym: str, key_id: bytes) -> DataKey | None:
        return None


class Unused:
    """A publisher that must not be reached."""

    async def publish(self, out: Outgoing, wait_s: float) -> None:
        raise AssertionError("nothing may be published without its seal")


def test_a_key_store_that_does_not_answer_is_a_503_with_retry_after(tmp_path: Path) -> None:
    tokens = write_partners(tmp_path / "partners.toml", BY_KIND)
    settings = ConnectorSettings(var_dir=tmp_path, partners_file=tmp_path / "partners.toml")
    app = create_app(settings, load_partners(tmp_path / "partners.toml"))
    # No lifespan runs over ASGITransport: the app's Kafka side is set by hand.
    app.state.publisher, app.state.keyring = Unused(), NoKeyStore()

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            headers: dict[str, Any] = {"Authorization": f"Bearer {tokens[partner_name(KIND)]}"}
            return await client.post(f"/v1/events/{KIND}", json=BY_KIND[KIND][0], headers=headers)

    answer = asyncio.run(send())
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == str(settings.retry_after_s)
    assert "key store" in answer.json()["detail"]


def test_a_file_whose_rows_cannot_be_sealed_is_left_for_the_next_poll(tmp_path: Path) -> None:
    write_partners(tmp_path / "partners.toml", BY_KIND)
    settings = ConnectorSettings(
        var_dir=tmp_path, partners_file=tmp_path / "partners.toml", file_settle_s=0
    )
    folder = tmp_path / "drop" / partner_name(KIND) / KIND
    folder.mkdir(parents=True)
    export = folder / "export.jsonl"
    export.write_text(json.dumps(BY_KIND[KIND][0]) + "\n")
    publisher = KafkaPublisher({"bootstrap.servers": "127.0.0.1:1"})  # never reached
    try:
        drop = FileDrop(
            tmp_path / "drop", settings, load_partners(settings.partners_file), publisher,
            NoKeyStore(),
        )  # fmt: skip
        lines: list[str] = []
        assert drop.poll(echo=lines.append) == (1, 0)
    finally:
        publisher.close(0)
    assert export.exists(), "the file must stay for the next poll"
    assert "not sealed" in lines[0] and "left in place" in lines[0]
