"""Publishing straight to Kafka, for a partner that runs Kafka itself: the rules in 40 lines.

The HTTP API and the file drop do exactly this for everyone else. A direct publisher must:

1. validate its payload with the edge model (``schemas.parse_partner``) and map it with
   ``schemas.to_record`` (the CPR number becomes the pseudonym, with the bus's pseudonym key);
2. encode it in the Confluent wire format with ``schemas.encode``;
3. key it by the subject pseudonym (UTF-8 bytes of the hex string), with the
   ``murmur2_random`` partitioner (``Settings.producer_config()``): the router expects one
   person's events in one partition;
4. add the CloudEvents headers (``schemas.cloudevent_headers``) and a W3C ``traceparent``
   (your PRODUCER span's context: OpenTelemetry's W3C propagator, here ``telemetry.inject``);
5. send to its own topic, ``partner.<its name>.events``, with an idempotent, acks=all
   producer, and wait for the delivery report. The Kafka gateway (``ungebus connect kafka``)
   checks each record as the HTTP API checks a request (kind, source, key, bounds) and
   forwards it to the bus's ordered inbound topic; what fails a check is dead-lettered;
6. keep the event id stable across retries (the router drops a repeated id).

Run against a local broker (topics created if missing), with a synthetic payload, as the demo
partner of the schools (``UNGEBUS_EXAMPLE_PARTNER`` names another):
``.venv/bin/python -m connectors.examples.direct_kafka``.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import uuid

from confluent_kafka import Producer
from opentelemetry.trace import SpanKind

from bus import telemetry
from bus.settings import load_settings
from bus.topics import ensure_topics
from schemas import cloudevent_headers, encode, parse_partner, to_record
from schemas.synthetic import valid_payload


def main() -> None:
    settings = load_settings()
    partner = os.environ.get("UNGEBUS_EXAMPLE_PARTNER", "demo-ungdomsuddannelser")
    topic = settings.topics.partner_events(partner)
    ensure_topics(settings.kafka_config(), settings.topics.partner_catalogue([partner]))
    kind = "dropout_notice"
    payload = valid_payload(random.Random(), kind, dt.date.today())  # your system's data here
    event = parse_partner(kind, payload)  # ValidationError: see schemas.field_errors
    event_id = str(event.event_id or uuid.uuid4())  # keep it for retries: same event, same id
    name, record = to_record(event, settings.pseudonym_key(), event_id)
    subject = record["envelope"]["subject"]["pseudonym"]

    producer = Producer(settings.producer_config())
    outcome: list[str] = []
    sending = telemetry.tracer("ungebus.examples.direct_kafka").start_as_current_span(
        f"send {topic}", kind=SpanKind.PRODUCER, attributes={telemetry.EVENT_ID: event_id}
    )
    with sending:
        producer.produce(
            topic,
            key=subject.encode(),
            value=encode(name, record),
            headers=telemetry.inject(cloudevent_headers(record)),
            on_delivery=lambda err, msg: outcome.append(
                f"not stored: {err}" if err else f"stored at {msg.topic()}[{msg.partition()}]"
            ),
        )
        producer.flush(30)
    print(f"event {event_id}: {outcome[0] if outcome else 'no delivery report within 30 s'}")


if __name__ == "__main__":
    main()
