"""The router worker: every inbound event and consent decided and written, and the timer
that purges holds whose consent did not come in time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust

from bus.crypto import Keyring
from streams.routing.outputs import InMessage, Output
from streams.routing.policy import Policy
from streams.routing.router import Router
from streams.routing.senders import Senders
from streams.routing.store import SubjectStore
from streams.runtime.agent import Agent
from streams.runtime.observe import RoutingTelemetry, Traced
from streams.runtime.state import StagedTables
from streams.runtime.window import Window
from streams.runtime.writer import OutputWriter
from streams.settings import RouterSettings


class RouterRole:
    """The router's agent and timer over one commit window and its state store.

    The timer and the agent share the state through the window's lock: one at a time, so a
    hold is not purged while the consent that releases it is being processed.
    """

    def __init__(
        self,
        app: faust.App,
        settings: RouterSettings,
        policy: Policy,
        senders: Senders,
        tables: StagedTables,
        fail: Callable[[BaseException], None],
        traced: Traced,
        keyring: Keyring,
    ) -> None:
        topics = settings.topics
        self.traced = traced
        self.observer = RoutingTelemetry("router")
        self.router = Router(policy, topics, senders, dedupe_days=settings.router_dedupe_days,
                             observer=self.observer, limits=settings.record_limits,
                             keyring=keyring)  # fmt: skip
        self.tables = tables
        self.store = SubjectStore(tables)
        self.window = Window(OutputWriter(settings), tables, fail,
                             dead_letters=self.router.dead_letters,
                             max_records=settings.router_batch_size,
                             max_wait_s=settings.router_commit_interval_s)  # fmt: skip
        # One topic: a person's events and consents in the order the bus accepted them; and the
        # erasures, keyed and partitioned like them, so a person's state is where it is erased.
        self.source = app.topic(
            topics.inbound_events, topics.erasures, key_serializer="raw", value_serializer="raw"
        )
        Agent(app, settings, self.window, self.handle).install(app, self.source, "route")
        app.timer(settings.router_hold_check_interval_s, name="expire_holds")(self.expire_holds)

    def handle(self, message: InMessage) -> list[Output]:
        return self.traced.process(message, self.route)

    def route(self, message: InMessage) -> list[Output]:
        outputs = self.router.handle(message, self.store)
        self.observer.routed_after(message, outputs)
        return outputs

    async def expire_holds(self) -> None:
        window = self.window
        async with window.lock:
            for pseudonym in self.tables.keys("held"):
                window.add(self.traced.sending(self.router.expire_holds(pseudonym, self.store)))
            await window.commit()

    @property
    def topics(self) -> list[Any]:
        return list(self.source.topics)
