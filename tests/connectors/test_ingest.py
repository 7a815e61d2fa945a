"""One partner payload -> one Kafka record or a rejection: the rules both connectors share."""

from __future__ import annotations

import re
import uuid

import pytest

from bus import telemetry
from bus.partners import SOURCES, PartnerRegistry, token_sha256
from bus.topics import Topics
from connectors.ingest import (
    Outgoing,
    Rejection,
    connector_topics,
    derived_event_id,
    idempotency_key_error,
    prepare,
    topic_for,
)
from schemas import PARTNER_KINDS, decode, parse_partner, pseudonym, to_record
from tests.support.partner_payloads import TODAY, partner_for, payloads

KEY = b"test-only-pseudonym-key-connectors"
TOPICS = Topics("t.")
TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[13]")


# -- tests ----------------------------------------------------------------------------------
BY_KIND = payloads()


@pytest.mark.parametrize("kind", sorted(PARTNER_KINDS))
def test_a_valid_payload_becomes_the_record_its_kind_maps_to(kind: str) -> None:
    payload = BY_KIND[kind][0]
    partner = partner_for(kind, [payload[SOURCES[kind][1]]])
    out = prepare(partner, kind, payload, pseudonym_key=KEY, topics=TOPICS, today=TODAY)
    assert isinstance(out, Outgoing)
    name, expected = to_record(parse_partner(kind, payload, today=TODAY), KEY, out.event_id)
    assert decode(out.value) == (name, decode(out.value).version, expected)
    assert out.topic == topic_for(kind, TOPICS)
    assert out.key == pseudonym(payload["subject"]["cpr"], KEY).encode()
    headers = dict(out.headers)
    assert headers["ce_id"] == out.event_id.encode()
    assert "traceparent" not in headers  # the span that sends the record adds it
    assert (out.event_kind, out.partner) == (kind, partner.name)
    assert out.source_kind == SOURCES[kind][0]
    cpr_digits = payload["subject"]["cpr"].replace("-", "")
    for value in [out.key, *headers.values()]:
        assert isinstance(value, bytes)
        assert cpr_digits.encode() not in value.replace(b"-", b"")
    if "event_id" in payload:
        assert out.event_id == payload["event_id"]


def test_consents_and_every_event_go_to_the_one_ordered_inbound_topic() -> None:
    assert {topic_for(kind, TOPICS) for kind in PARTNER_KINDS} == {"t.inbound.events"}
    spec, keys = connector_topics(TOPICS)
    assert spec.name == "t.inbound.events"
    assert spec.config.get("retention.ms")
    assert keys.name == "t.keys"  # where the connectors keep the keys they seal with


def test_a_kind_the_partner_may_not_send_is_forbidden() -> None:
    school = partner_for("school_absence_signal", ["916110"])
    payload = BY_KIND["release_planning_prison"][0]
    out = prepare(school, "release_planning_prison", payload, pseudonym_key=KEY, topics=TOPICS)
    assert isinstance(out, Rejection) and out.status == "forbidden"
    assert out.errors[0]["code"] == "kind_not_allowed"


def test_another_partners_source_is_forbidden_and_named() -> None:
    payload = {**BY_KIND["dropout_notice"][0], "institution_number": "999999"}
    partner = partner_for("dropout_notice", ["916101"])
    out = prepare(partner, "dropout_notice", payload, pseudonym_key=KEY, topics=TOPICS)
    assert isinstance(out, Rejection) and out.status == "forbidden"
    assert out.errors[0]["field"] == "institution_number"
    assert "999999" in out.errors[0]["reason"] and "916101" in out.errors[0]["reason"]


def test_invalid_input_names_the_field_and_never_echoes_the_cpr() -> None:
    payload = BY_KIND["dropout_notice"][0]
    bad_cpr = "3102091234"  # 31 February
    bad = {**payload, "subject": {**payload["subject"], "cpr": bad_cpr}}
    partner = partner_for("dropout_notice", [payload["institution_number"]])
    out = prepare(partner, "dropout_notice", bad, pseudonym_key=KEY, topics=TOPICS)
    assert isinstance(out, Rejection) and out.status == "invalid"
    assert [e["field"] for e in out.errors] == ["subject.cpr"]
    assert bad_cpr not in repr(out.errors)


def test_event_ids_without_event_id_are_stable_and_do_not_reveal_the_cpr() -> None:
    payload = {k: v for k, v in BY_KIND["handover_uu"][0].items() if k != "event_id"}
    event = parse_partner("handover_uu", payload, today=TODAY)
    first = derived_event_id("uu", "handover_uu", event, KEY, None)
    assert first == derived_event_id("uu", "handover_uu", event, KEY, None)
    assert first != derived_event_id("other", "handover_uu", event, KEY, None)
    assert first != derived_event_id("uu", "handover_uu", event, b"another key", None)
    keyed = derived_event_id("uu", "handover_uu", event, KEY, "retry-42")
    assert uuid.UUID(keyed).version == 5
    assert keyed != first
    assert idempotency_key_error("retry-42") is None
    assert idempotency_key_error("x" * 201) is not None
    assert idempotency_key_error("tab\there") is not None


def test_traceparent_is_new_or_continues_a_valid_incoming_trace() -> None:
    """The partner's trace continues when valid; otherwise the request starts a new one."""
    from connectors.tracing import edge_parent

    def sent_under(incoming: str | None) -> str:
        with telemetry.tracer("test").start_as_current_span("s", context=edge_parent(incoming)):
            found = telemetry.traceparent_of_current()
        assert found is not None and TRACEPARENT.fullmatch(found)
        return found

    fresh = sent_under(None)
    assert fresh.split("-")[1] != sent_under(None).split("-")[1]
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    continued = sent_under(incoming)
    assert continued.split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert continued.split("-")[2] != "00f067aa0ba902b7"
    assert sent_under("garbage").split("-")[1] != "garbage"
    zero = "00-" + "0" * 32 + "-00f067aa0ba902b7-01"
    assert sent_under(zero).split("-")[1] != "0" * 32
    # A partner's "not sampled" does not switch the bus's tracing off.
    unsampled = sent_under("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
    assert unsampled.split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert int(unsampled.split("-")[3], 16) & 1


def test_registry_finds_partners_by_token_and_certificate() -> None:
    partner = partner_for("dropout_notice", ["916101"])
    registry = PartnerRegistry(
        [partner], {token_sha256("s3cret"): partner.name}, {"ab" * 32: partner.name}
    )
    assert registry.from_token("s3cret") == partner
    assert registry.from_token("guess") is None
    assert registry.from_certificate(":".join(["AB"] * 32)) == partner
