"""R_fan: the raw reference with the router's own write pattern.

R_ref (``bench.raw_relay``) writes each inbound record twice, to two one-partition topics. The
router writes more, and wider: a task to each routed unit's topic (``tasks.<kk>.<unit>``, the
person's partition), an audit record, and its tables' changelog records. R_fan relays the
same inbound records with exactly those writes, and nothing else: the bytes are worked out
before the clock starts by the router's own logic (``Router.handle`` over the same records,
its state changes gathered per commit window of ``WINDOW`` records, as the router's windows
do), then a bare confluent-kafka consumer and producer pass them on with the router's
at-least-once discipline (every output acknowledged, then the commit). The router against
R_fan is what the router costs; R_fan against R_ref is what the topic layout costs the broker.

Its outputs go to topics of their own (the measure's prefix plus ``fan.``), made with the
catalogue's partition counts, so they never mix with the router's. With the bench's
inbound records sealed as the connectors seal them (the keys made by then), the router here
unseals them and seals its tasks' details with the same keys, as the real router does.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, Producer

from bus.crypto import Keyring
from bus.demo_partners import demo_registry
from bus.settings import Settings
from bus.topics import SUBJECT_PARTITIONS, ensure_topics
from streams.routing.outputs import InMessage, Output
from streams.routing.policy import load_policy
from streams.routing.router import Router, SubjectStore
from streams.routing.senders import Senders
from streams.runtime.app import app_id_of, internal_topics
from streams.runtime.state import StagedTables

_UNASSIGNED = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the partitioner chooses
WINDOW = 500  # the router's commit window (``UNGEBUS_ROUTER_BATCH_SIZE``'s default)


@dataclass(frozen=True)
class _Changelog:
    """A router table's changelog, as ``faust_fixes.TableChangelog`` writes it."""

    topic: str

    def record(self, key: bytes, value: bytes | None) -> Output:
        partition = (murmur2(key) & 0x7FFFFFFF) % SUBJECT_PARTITIONS
        return Output(self.topic, key, value, [], partition)


@dataclass(frozen=True)
class FanPlan:
    """Per inbound record (by its value's bytes), the records the router writes for it."""

    writes: dict[bytes, list[Output]]

    def per_event(self) -> float:
        return sum(len(o) for o in self.writes.values()) / max(1, len(self.writes))

    def by_kind(self, fan: Settings) -> dict[str, float]:
        """Writes per inbound record, by kind of topic: tasks, audit, changelog."""
        tasks, audit = set(fan.topics.all_tasks()), fan.topics.audit_routing
        kinds: Counter[str] = Counter()
        for outputs in self.writes.values():
            for output in outputs:
                if output.topic in tasks:
                    kinds["tasks"] += 1
                elif output.topic == audit:
                    kinds["audit"] += 1
                elif output.topic.endswith("-changelog"):
                    kinds["changelog"] += 1
                else:
                    kinds[output.topic.removeprefix(fan.topic_prefix)] += 1
        return {kind: n / max(1, len(self.writes)) for kind, n in kinds.items()}


def fan_settings(settings: Settings) -> Settings:
    """The measure's settings with their own output topics (``<prefix>fan.``), created."""
    fan = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}fan."})
    ensure_topics(fan.kafka_config(), [*fan.topics.catalogue(), *internal_topics(fan)])
    return fan


def plan(
    fan: Settings, records: list[tuple[str, bytes, bytes]], keyring: Keyring | None = None
) -> FanPlan:
    """The router's writes for ``records`` (topic, key, value), aimed at ``fan``'s topics;
    ``keyring``: the router's access to the data keys the records are sealed with (it seals
    its tasks' details with them too)."""
    senders = Senders.from_registry(demo_registry())
    router = Router(load_policy(), fan.topics, senders, keyring=keyring)
    app_id = app_id_of(fan, "router")
    changelogs = {t: _Changelog(f"{app_id}-{t}-changelog") for t in SubjectStore.TABLES}
    tables = StagedTables({t: {} for t in SubjectStore.TABLES}, changelogs=changelogs)
    store = SubjectStore(tables)
    writes: dict[bytes, list[Output]] = {}
    gathered: list[Output] = []
    last = b""
    inbound = fan.topics.inbound_events  # the router reads only its own inbound topic
    for offset, (_topic, key, value) in enumerate(records):
        tables.begin()
        writes[value] = router.handle(InMessage(inbound, 0, offset, key, value, []), store)
        last = value
        if (offset + 1) % WINDOW == 0 or offset + 1 == len(records):
            sealed = tables.seal()
            tables.write(sealed, _Gather(gathered))
            writes[last] = [*writes[last], *gathered]
            gathered.clear()
    dead = sum(o.topic == fan.topics.deadletter for outs in writes.values() for o in outs)
    if dead:  # dead letters are not the router's work on these events: a wrong measure
        raise ValueError(f"{dead} of {len(records)} bench events were not routable")
    return FanPlan(writes)


@dataclass(frozen=True)
class _Gather:
    into: list[Output]

    def produce(self, outputs: Sequence[Output]) -> None:
        self.into.extend(outputs)


def fan_pass_through(settings: Settings, fan_plan: FanPlan, count: int) -> float:
    """Events/s of a bare confluent-kafka consumer + producer doing the router's writes."""
    consumer = Consumer(settings.consumer_config(f"{settings.topic_prefix}fan"))
    consumer.subscribe([settings.topics.inbound_events])
    producer = Producer(settings.producer_config())
    writes = fan_plan.writes
    done, start = 0, 0.0
    while done < count:
        batch = consumer.consume(num_messages=WINDOW, timeout=1.0)
        if batch:  # the clock starts with the first records, not with joining the group
            start = start or time.monotonic()
        for message in batch:
            if message.error() is None:
                for out in writes[message.value() or b""]:
                    _produce(producer, out)
                done += 1
        if batch:
            producer.flush(30)
            consumer.commit(asynchronous=False)
    elapsed = time.monotonic() - start
    consumer.close()
    return count / elapsed


def _produce(producer: Producer, out: Output) -> None:
    partition = _UNASSIGNED if out.partition is None else out.partition
    while True:
        try:
            producer.produce(out.topic, key=out.key, value=out.value,
                             headers=list(out.headers), partition=partition)  # fmt: skip
            return
        except BufferError:
            producer.poll(0.05)
