"""The faust shell around the router and the handover tracker: consume, decide, write.

Reliability rules (see DESIGN.md, known traps):
- one agent per input, concurrency 1 (faust-streaming #606);
- faust acks a record when the agent moves on, even after a failure; so the agents read with
  manual acks and ack through a :class:`~streams.runtime.window.Window` only after Kafka has every
  output; the router and the tracker turn every bad record into a dead letter; if Kafka does
  not acknowledge the outputs the process exits at once (``os._exit``) before anything is
  acked, and a restart handles the window again (task ids are deterministic, the inbox stores
  a task once);
- tables are written only after Kafka has the window's outputs, so a crash never leaves state
  claiming an event was routed when its task is not on Kafka;
- ``stream.take()`` is not used: under load it stopped delivering records after a restart;
- a partition is never committed past a record that was read and not acked, which faust
  0.15.3 can do (``streams.runtime.transport``, ``streams.runtime.commit_guard``);
- one record never stops the others: every output is checked against the producer's limit
  before any is produced, a record Kafka refuses becomes a dead letter (``streams.runtime.window``),
  and a record the process died on ``router_crash_limit`` times in a row is dead-lettered
  unhandled (``streams.runtime.quarantine``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import os
import time
from collections.abc import Callable
from typing import Any, Literal

import faust
from aiokafka.partitioner import murmur2
from confluent_kafka import KafkaException

from bus import services, telemetry
from bus.settings import Settings
from bus.topics import SUBJECT_PARTITIONS, Topics, TopicSpec
from streams.handover.tracker import Tracker
from streams.routing.dead_letters import DeadLetters
from streams.routing.outputs import InMessage, Output
from streams.routing.policy import Policy
from streams.routing.router import Router, SubjectStore
from streams.routing.senders import Senders
from streams.runtime.changelog import WrittenThrough
from streams.runtime.liveness import LagProbe, Offsets, Watchdog
from streams.runtime.observe import RoutingTelemetry, Traced
from streams.runtime.overlay import TableOverlay
from streams.runtime.quarantine import CrashMarks
from streams.runtime.transport import Transport
from streams.runtime.window import Window
from streams.runtime.writer import DeliveryFailed, OutputWriter

log = logging.getLogger("ungebus.router")
EXIT_BATCH_FAILED = services.EXIT_BATCH_FAILED
EXIT_STALLED = services.EXIT_RESTART  # a supervisor (``ungebus run``, systemd...) restarts it


class SubjectTable(faust.Table):
    """A table keyed by subject pseudonym, partitioned like the topics it is fed from.

    The partition is the Java client's murmur2 of the key, the same every producer of the bus
    uses (``partitioner=murmur2_random``), so a person's table entry sits in the partition of
    their events, also when written from a timer outside any event.
    """

    def partition_for_key(self, key: Any) -> int:
        return int((murmur2(key) & 0x7FFFFFFF) % self.partitions)


class BusApp(faust.App):
    # set by ``_new_app``, read by the transport
    settings: Settings
    fetch_max_wait_ms: int  # the router's short (latency), the tracker's long (idle load)
    group_instance_id: str | None  # its stable name in its consumer group (static membership)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return Transport(self.conf.broker_producer, self)


Role = Literal["router", "tracker"]
# The router and the handover tracker are two faust apps (two consumer groups, two processes:
# ``ungebus streams`` starts both), each with its own tables.
ROLES: tuple[Role, ...] = ("router", "tracker")
TABLES: dict[Role, tuple[str, ...]] = {
    "router": ("consents", "held", "seen"),
    "tracker": ("handovers",),
}
SERVICE = services.ROUTER.name  # the OpenTelemetry service.name of both


def app_id_of(settings: Settings, role: Role) -> str:
    return f"{settings.topic_prefix}ungebus-{role}"


def router_app_id(settings: Settings) -> str:
    return app_id_of(settings, "router")


def internal_topics(settings: Settings) -> list[TopicSpec]:
    """faust's own topics of both apps, created before the workers start.

    faust creates them itself, but subscribes before every broker lists them, and a topic
    missing from the first subscription is ignored until the next metadata refresh.
    """
    compact = {"cleanup.policy": "compact"}
    specs = []
    for role in ROLES:
        app_id = app_id_of(settings, role)
        specs += [
            TopicSpec(f"{app_id}-{table}-changelog", SUBJECT_PARTITIONS, config=compact)
            for table in TABLES[role]
        ]
        specs.append(TopicSpec(f"{app_id}-__assignor-__leader", 1, config=compact))
    return specs


def create_app(
    settings: Settings,
    policy: Policy,
    *,
    role: Role = "router",
    senders: Senders | None = None,
    on_batch_failure: Callable[[BaseException], None] | None = None,
) -> faust.App:
    """The faust app of one role: the router (agent, hold-expiry timer) or the tracker.

    The router needs ``senders`` (``streams.routing.senders``, from the partner registry)."""
    app = _new_app(settings, role)
    fail = on_batch_failure or _exit_on_batch_failure
    traced = Traced(SERVICE, app.conf.id)
    if role == "router":
        if senders is None:
            raise ValueError("the router needs the partner registry (senders) to check senders")
        source = _route(app, settings, policy, senders, fail, traced)
    else:
        source = _track_handovers(app, settings, fail, traced)
    _watch_liveness(app, settings, list(source.topics))
    app.task(_freeze_start_up_objects)
    return app


async def _freeze_start_up_objects() -> None:
    """Move what start-up made (modules, faust, the SDKs) out of the garbage collector's
    sight: a full collection over it took about 50 ms, a pause every routed event behind it
    waited for."""
    gc.collect()
    gc.freeze()


def _new_app(settings: Settings, role: Role) -> faust.App:
    app = BusApp(
        app_id_of(settings, role),
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        store="memory://",
        datadir=str(settings.var_dir / "faust"),
        web_enabled=False,
        topic_replication_factor=settings.replication_factor,
        topic_partitions=SUBJECT_PARTITIONS,
        topic_allow_declare=True,
        producer_acks=-1,
        producer_linger_ms=5,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        stream_wait_empty=True,
        # faust pauses a partition whose stream buffer passes maxsize / 1.25 and resumes it
        # when the buffer drains; after a restart with a backlog we saw partitions never
        # resumed (the worker idles with records waiting). A buffer this large keeps a backlog
        # from reaching that path; memory per buffered record is about 1 KB.
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        broker_session_timeout=settings.consumer_session_timeout_s,
        broker_heartbeat_interval=settings.consumer_session_timeout_s / 10,
        Table=SubjectTable,
    )
    app.settings = settings
    app.fetch_max_wait_ms = {
        "router": settings.router_fetch_max_wait_ms,
        "tracker": settings.tracker_fetch_max_wait_ms,
    }[role]
    app.group_instance_id = settings.group_instance_id(role)
    return app


def _table(app: faust.App, name: str, help_: str) -> Any:
    return app.Table(
        name, partitions=SUBJECT_PARTITIONS, key_type=bytes, value_type=bytes, help=help_
    )


def _route(
    app: faust.App,
    settings: Settings,
    policy: Policy,
    senders: Senders,
    fail: Callable[[BaseException], None],
    traced: Traced,
) -> Any:
    """The router: every inbound event and consent, decided and written. Returns its topic."""
    topics = settings.topics
    # One topic: a person's events and consents in the order the bus accepted them.
    source = app.topic(topics.inbound_events, key_serializer="raw", value_serializer="raw")

    consents = _table(app, "consents", "Consent state per subject pseudonym (fold of consents)")
    held = _table(app, "held", "Events waiting for consent, per subject pseudonym")
    seen = _table(app, "seen", "Event ids already routed, per subject pseudonym (duplicates)")
    observer = RoutingTelemetry("router")
    limits = settings.record_limits
    router = Router(policy, topics, senders, dedupe_days=settings.router_dedupe_days,
                    observer=observer, limits=limits)  # fmt: skip
    # The timer and the agent share the tables through the window's lock: one at a time, so a
    # hold is not purged while the consent that releases it is being processed.
    writer = OutputWriter(settings)
    store = SubjectStore(
        WrittenThrough(consents, writer),
        WrittenThrough(held, writer),
        WrittenThrough(seen, writer),
        max_entry_bytes=limits.value_budget(b"", []),
    )
    window = Window(writer, store, fail, dead_letters=router.dead_letters,
                    max_records=settings.router_batch_size,
                    max_wait_s=settings.router_commit_interval_s)  # fmt: skip

    def route(message: InMessage) -> list[Output]:
        outputs = router.handle(message, window.state)
        observer.routed_after(message, outputs)
        return outputs

    _consume(app, settings, "route", source, window,
             lambda message: traced.process(message, route))  # fmt: skip

    @app.timer(settings.router_hold_check_interval_s)
    async def expire_holds() -> None:
        async with window.lock:
            for key in list(held.keys()):
                window.add(traced.sending(router.expire_holds(key.decode(), window.state)))
            await window.commit()

    return source


def _consume(
    app: faust.App,
    settings: Settings,
    name: str,
    source: Any,
    window: Window[Any],
    handle: Callable[[InMessage], list[Output]],
) -> None:
    """An agent (concurrency 1) that handles each record into ``window``, acked on commit.

    Each record is marked in flight while it is handled (``streams.runtime.quarantine``); one the
    worker died on ``router_crash_limit`` times in a row is dead-lettered instead.
    """
    marks = CrashMarks(settings.var_dir / "crash-marks" / app.conf.id)
    role = app.conf.id.rsplit("-", 1)[-1]  # router or tracker
    limit = settings.router_crash_limit
    dead_letters: DeadLetters = window.dead_letters

    def set_aside(message: InMessage, crashes: int) -> list[Output]:
        log.error(
            "The %s died %d times in a row on %s-%d@%d; dead-lettering it unhandled",
            role, crashes, message.topic, message.partition, message.offset,
        )  # fmt: skip
        reason = (
            f"the {role} process died {crashes} times in a row while handling this record "
            f"(UNGEBUS_ROUTER_CRASH_LIMIT={limit}): it is set aside unhandled, so that the "
            "records after it are handled"
        )
        return [dead_letters.of_record(message, reason, f"crashed_{role}")]

    async def agent(stream: Any) -> None:
        manual = stream.noack()
        async for event in manual.events():
            message = _in_message(event.message)
            mark, offset = marks.of(message.topic, message.partition), message.offset
            async with window.lock:
                crashes = mark.start(offset)
                outputs = set_aside(message, crashes) if crashes >= limit else handle(message)
                window.add(outputs, manual, event, message)
                mark.finish(offset)
                if window.full:
                    await window.close()  # commits in the background

    app.agent(source, name=name, concurrency=1)(agent)
    app.task(window.keep_committing)


def _track_handovers(
    app: faust.App,
    settings: Settings,
    fail: Callable[[BaseException], None],
    traced: Traced,
) -> Any:
    """The handover tracker: open tasks per person, closed by take-overs, escalated when late.

    Returns the topic it reads.
    """
    topics = settings.topics
    source = app.topic(
        *topics.all_tasks(), topics.task_acks, key_serializer="raw", value_serializer="raw"
    )
    handovers = _table(app, "handovers", "Open tasks and their due-by, per subject pseudonym")
    limits = settings.record_limits
    tracker = Tracker(
        topics,
        unknown_ack_grace=dt.timedelta(seconds=settings.tracker_unknown_ack_grace_s),
        observer=RoutingTelemetry("tracker"),
        limits=limits,
    )
    writer = OutputWriter(settings)
    state = TableOverlay(WrittenThrough(handovers, writer), limits.value_budget(b"", []))
    window = Window(writer, state, fail, dead_letters=tracker.dead_letters,
                    max_records=settings.router_batch_size,
                    max_wait_s=settings.router_commit_interval_s)  # fmt: skip

    def track(message: InMessage) -> list[Output]:
        return traced.process(message, lambda m: tracker.handle(m, window.state))

    _consume(app, settings, "track", source, window, track)

    @app.timer(settings.tracker_check_interval_s)
    async def escalate_overdue() -> None:
        async with window.lock:
            pseudonyms = [key.decode() for key in handovers]
            window.add(traced.sending(tracker.expire(window.state, pseudonyms)))
            await window.commit()

    return source


def _watch_liveness(app: faust.App, settings: Settings, topics: list[str]) -> None:
    """Exit when records wait and nothing moves (see ``streams.runtime.liveness``)."""
    probe = LagProbe(settings.kafka_config(), app.conf.id, topics)
    watchdog = Watchdog(settings.router_stall_after_s)
    latest: list[Offsets] = []  # the last reading, for the consumer-lag gauge
    telemetry.consumer_lag_gauge(
        telemetry.meter("ungebus.router"), app.conf.id, lambda: latest[-1].lag() if latest else {}
    )

    @app.timer(settings.router_liveness_interval_s)
    async def watch_liveness() -> None:
        try:
            offsets = await asyncio.get_running_loop().run_in_executor(None, probe.read)
        except KafkaException as exc:  # Kafka away: the writer's timeout deals with that
            log.warning("Could not read the router's consumer offsets: %s", exc)
            return
        latest[:] = [offsets]
        now = time.monotonic()
        if app.rebalancing or app.in_recovery:
            watchdog.reset()
        elif watchdog.observe(offsets, now):
            waiting = sum(offsets.lag().values())
            log.critical(
                "A partition of the router has not moved for %.0f s with records waiting (%d in "
                "all); exiting so that its supervisor starts it again (it resumes from the "
                "committed offsets)",
                settings.router_stall_after_s,
                waiting,
            )
            _exit_now(EXIT_STALLED)


def _in_message(message: Any) -> InMessage:
    return InMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=_headers(message.headers),
        timestamp=message.timestamp,
    )


def _headers(raw: Any) -> list[tuple[str, bytes]]:
    if not raw:
        return []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(str(k), bytes(v) if v is not None else b"") for k, v in items]


def _exit_on_batch_failure(exc: BaseException) -> None:
    log.critical(
        "A batch could not be completed (%s: %s); exiting before it is acked or committed, "
        "so it is processed again on restart",
        type(exc).__name__,
        exc if isinstance(exc, DeliveryFailed) else "stopped mid-batch or failed",
    )
    _exit_now(EXIT_BATCH_FAILED)


def _exit_now(code: int) -> None:
    """Exit at once, acking and committing nothing more (logs flushed first)."""
    logging.shutdown()
    os._exit(code)


__all__ = ["BusApp", "Topics", "create_app"]
