"""``ungebus audit CPR|PSEUDONYM``: every routing decision about one person.

Answers "who received what, when, and on which basis" from the ``audit.routing`` topic. The
audit records are keyed by the person's pseudonym, so only that key's partition is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import click
from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, TopicPartition

import schemas
from bus.settings import Settings, load_settings

_CPR = re.compile(r"^\d{6}-?\d{4}$")
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")


def to_pseudonym(person: str, settings: Settings) -> str:
    """A CPR number becomes its pseudonym here and goes no further; a pseudonym stays."""
    if _CPR.match(person):
        return schemas.pseudonym(person, settings.pseudonym_key())
    if _PSEUDONYM.match(person):
        return person
    raise click.BadParameter("give a CPR number (DDMMYY-SSSS) or a 64-hex-digit pseudonym")


def decisions_about(pseudonym: str, settings: Settings) -> Iterator[Mapping[str, Any]]:
    """Every audit record for ``pseudonym``, oldest first, up to the end of the topic now."""
    topic = settings.topics.audit_routing
    consumer = Consumer(settings.consumer_config("ungebus-audit-query"))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        key = pseudonym.encode()
        partition = (murmur2(key) & 0x7FFFFFFF) % len(partitions)
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high <= low:
            return
        consumer.assign([TopicPartition(topic, partition, low)])
        position = low
        while position < high:
            for message in consumer.consume(num_messages=500, timeout=2):
                offset, value = message.offset(), message.value()
                if message.error() is not None or offset is None:
                    continue
                position = offset + 1
                if message.key() == key and value is not None:
                    yield schemas.decode(value).record
                if position >= high:
                    break
    finally:
        consumer.close()


def render(record: Mapping[str, Any]) -> str:
    routes = ", ".join(
        f"{r['unit']}@{r['kommunekode']} on {r['basis']['id']} ({r['basis']['citation']})"
        + (f" with consent {r['consent_id']}" if r["consent_id"] else "")
        + f" saw {len(r['fields'])} fields"
        for r in record["routes"]
    )
    when = record["decided_at"].isoformat(timespec="seconds")
    head = f"{when}  {record['event_type']}  {record['event_id']}  {record['decision'].upper()}"
    return f"{head}\n    {routes or record['reason']}"


@click.command()
@click.argument("person")
def audit(person: str) -> None:
    """List every routing decision about one person (CPR number or pseudonym)."""
    settings = load_settings()
    pseudonym = to_pseudonym(person, settings)
    count = 0
    for record in decisions_about(pseudonym, settings):
        click.echo(render(record))
        count += 1
    click.echo(f"{count} decision(s) about pseudonym {pseudonym[:12]}…")
