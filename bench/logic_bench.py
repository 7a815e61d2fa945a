"""The router's own work on a record without Kafka, faust or spans (``logic_rate``), and
decide() per second over policies of growing size (``decide_rate``)."""

from __future__ import annotations

import time
from typing import Any

from bench.router_load import utc_now, wire
from bus.crypto import MemoryKeyring, seal
from bus.demo_partners import demo_registry
from bus.settings import Settings
from streams.routing.consent import ConsentState
from streams.routing.decide import InboundEvent, decide
from streams.routing.outputs import InMessage
from streams.routing.policy import Policy, load_policy
from streams.routing.router import Router, SubjectStore
from streams.routing.senders import Senders
from streams.runtime.state import StagedTables


def policy_with_rules(policy: Policy, total: int) -> Policy:
    """The shipped policy padded with rules that never match (a foreign source kind)."""
    raw = policy.model_dump(mode="python")
    base = raw["rules"]
    padding = []
    for i in range(total - len(base)):
        rule = dict(base[i % len(base)])
        rule["id"] = f"padding.{i}"
        rule["age"] = {"min": 100, "max": 150}
        padding.append(rule)
    raw["rules"] = [*padding, *base]
    return Policy.model_validate(raw)


def logic_rate(
    settings: Settings, events: list[tuple[str, dict[str, Any]]], seconds: float
) -> float:
    """Events/s of the router's own work on a record (unseal, decode, decide, the task and
    audit records encoded and the task's details sealed, the tables' state) in this process:
    no Kafka, no faust, no spans. A ceiling for one router process on this machine, whatever
    the framework around it."""
    senders = Senders.from_registry(demo_registry())
    keyring = MemoryKeyring()  # every person's key in memory, as a running router holds it
    router = Router(load_policy(), settings.topics, senders, keyring=keyring)
    dead_letters = settings.topics.deadletter
    messages = [
        InMessage(topic, 0, offset, key, seal(keyring, key.decode(), value), [])
        for offset, (topic, key, value) in enumerate(wire(settings, events))
    ]
    first_pass = _store()
    dead = [m for m in messages for o in router.handle(m, first_pass) if o.topic == dead_letters]
    if dead:  # the dead-letter path is cheaper: it would flatter the ceiling
        raise ValueError(f"{len(dead)} of {len(messages)} bench events were not routable")
    refused = [n for n, r in events if senders.refusal(n, r["envelope"]) is not None]
    if refused:  # so is a sender the partner registry does not know
        raise ValueError(f"{len(refused)} of {len(messages)} bench events have unknown senders")
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        store = _store()  # a new state for each pass: no duplicates
        for message in messages:
            router.handle(message, store)
        done += len(messages)
    return done / (time.perf_counter() - start)


def _store() -> SubjectStore:
    return SubjectStore(StagedTables.in_memory(*SubjectStore.TABLES))


def decide_rate(policy: Policy, events: list[tuple[str, dict[str, Any]]], seconds: float) -> float:
    inbound = [InboundEvent(n, r) for n, r in events]
    state, now = ConsentState(), utc_now()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        decide(inbound[done % len(inbound)], state, policy, now)
        done += 1
    return done / (time.perf_counter() - start)
