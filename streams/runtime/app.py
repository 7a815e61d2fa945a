"""The faust shell around the router and the handover tracker: consume, decide, write.

``create_app`` builds one worker's faust app: the router (``streams.runtime.router_role``)
or the tracker (``streams.runtime.tracker_role``), each an agent (``streams.runtime.agent``)
over a commit window (``streams.runtime.window``) and a state store
(``streams.runtime.state``), with a liveness timer (``streams.runtime.liveness_timer``).

Reliability rules (see DESIGN.md, known traps; the faust and aiokafka fixes are all in
``streams.runtime.faust_fixes``):
- one agent per input, concurrency 1 (faust-streaming #606);
- faust acks a record when the agent moves on, even after a failure; so the agents read with
  manual acks and ack through the window only after Kafka has every output; the router and
  the tracker turn every bad record into a dead letter; if Kafka does not acknowledge the
  outputs the process exits at once (``streams.runtime.exits``) before anything is acked,
  and a restart handles the window again (task ids are deterministic, the inbox stores a
  task once);
- tables are written only after Kafka has the window's outputs, so a crash never leaves state
  claiming an event was routed when its task is not on Kafka;
- a partition is never committed past a record that was read and not acked, which faust
  0.15.3 can do (``streams.runtime.commit_guard``);
- one record never stops the others: every output is checked against the producer's limit
  before any is produced, a record Kafka refuses becomes a dead letter (``streams.runtime.window``),
  and a record the process died on ``router_crash_limit`` times in a row is dead-lettered
  unhandled (``streams.runtime.quarantine``).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Literal

import faust

from bus import services
from bus.crypto import Keyring
from bus.keystore import keyring_for
from bus.settings import Settings
from bus.topics import SUBJECT_PARTITIONS, TopicSpec
from streams.handover.store import HandoverStore
from streams.routing.policy import Policy
from streams.routing.senders import Senders
from streams.routing.store import SubjectStore
from streams.runtime.exits import exit_on_batch_failure
from streams.runtime.faust_fixes import BusApp, ConsumerTuning, SubjectTable, TableChangelog
from streams.runtime.liveness_timer import LivenessTimer
from streams.runtime.observe import Traced
from streams.runtime.router_role import RouterRole
from streams.runtime.state import StagedTables
from streams.runtime.tracker_role import TrackerRole
from streams.settings import RouterSettings, TrackerSettings, WorkerSettings

Role = Literal["router", "tracker"]
# The router and the handover tracker are two faust apps (two consumer groups, two processes:
# ``ungebus streams`` starts both), each with its own tables.
ROLES: tuple[Role, ...] = ("router", "tracker")
TABLES: dict[Role, tuple[str, ...]] = {
    "router": SubjectStore.TABLES,
    "tracker": HandoverStore.TABLES,
}
TABLE_HELP = {
    "consents": "Consent state per subject pseudonym (fold of consents)",
    "held": "Events waiting for consent, per subject pseudonym",
    "seen": "Event ids already routed, per subject pseudonym (duplicates)",
    "handovers": "Open tasks and their due-by, per subject pseudonym",
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


def create_router_app(
    settings: RouterSettings,
    policy: Policy,
    senders: Senders,
    on_batch_failure: Callable[[BaseException], None] | None = None,
    keyring: Keyring | None = None,
) -> faust.App:
    """The router's faust app: its agent and hold-expiry timer. ``senders`` come from the
    partner registry (``streams.routing.senders``); ``keyring`` unseals the events and seals
    the tasks' details (without one, the app opens its own on the key store)."""
    app = _new_app(settings, "router", settings.router_fetch_max_wait_ms)
    fail = on_batch_failure or exit_on_batch_failure
    traced = Traced(SERVICE, app.conf.id)
    role = RouterRole(app, settings, policy, senders, _tables(app, settings, "router"), fail,
                      traced, keyring or keyring_for(settings))  # fmt: skip
    return _watched(app, settings, role.topics)


def create_tracker_app(
    settings: TrackerSettings, on_batch_failure: Callable[[BaseException], None] | None = None
) -> faust.App:
    """The handover tracker's faust app: its agent and escalation timer."""
    app = _new_app(settings, "tracker", settings.tracker_fetch_max_wait_ms)
    fail = on_batch_failure or exit_on_batch_failure
    traced = Traced(SERVICE, app.conf.id)
    role = TrackerRole(app, settings, _tables(app, settings, "tracker"), fail, traced)
    return _watched(app, settings, role.topics)


def _watched(app: faust.App, settings: WorkerSettings, topics: list[str]) -> faust.App:
    LivenessTimer(app, settings, topics)
    app.task(_freeze_start_up_objects)
    return app


async def _freeze_start_up_objects() -> None:
    """Move what start-up made (modules, faust, the SDKs) out of the garbage collector's
    sight: a full collection over it took about 50 ms, a pause every routed event behind it
    waited for."""
    gc.collect()
    gc.freeze()


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """The settings' Kafka login for faust's aiokafka clients (the same principal, password
    and CA as the confluent-kafka ones of :meth:`Settings.kafka_config`)."""
    import ssl

    from faust.auth import SASLCredentials, SSLCredentials

    protocol = settings.kafka_security_protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol.endswith("SSL"):
        ca = settings.kafka_ssl_ca_location
        context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    if not protocol.startswith("SASL"):
        return SSLCredentials(context)
    password = settings.kafka_sasl_secret()
    return SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password is not None else None,
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism,
    )


def _new_app(settings: WorkerSettings, role: Role, fetch_max_wait_ms: int) -> BusApp:
    app = BusApp(
        app_id_of(settings, role),
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        broker_credentials=broker_credentials(settings),
        store="memory://",
        datadir=str(settings.var_dir / services.FAUST_DIR),
        web_enabled=False,
        topic_replication_factor=settings.replication_factor,
        topic_partitions=SUBJECT_PARTITIONS,
        topic_allow_declare=True,
        producer_acks=-1,
        producer_linger_ms=5,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        stream_wait_empty=True,
        # Large, so that a backlog never reaches faust's pause/resume path (WorkerSettings).
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        broker_session_timeout=settings.consumer_session_timeout_s,
        broker_heartbeat_interval=settings.consumer_session_timeout_s / 10,
        Table=SubjectTable,
    )
    app.consumer_tuning = ConsumerTuning(
        fetch_min_bytes=settings.router_fetch_min_bytes,
        fetch_max_wait_ms=fetch_max_wait_ms,
        group_instance_id=settings.group_instance_id(role),
    )
    return app


def _tables(app: faust.App, settings: WorkerSettings, role: Role) -> StagedTables:
    """The role's faust tables (keys and values raw bytes), as one state store."""
    changelogs = {
        name: TableChangelog(
            app.Table(
                name,
                partitions=SUBJECT_PARTITIONS,
                key_type=bytes,
                value_type=bytes,
                help=TABLE_HELP[name],
            )
        )
        for name in TABLES[role]
    }
    return StagedTables(
        changelogs,
        changelogs=changelogs,
        max_entry_bytes=settings.record_limits.value_budget(b"", []),
    )


__all__ = ["create_router_app", "create_tracker_app", "internal_topics", "router_app_id"]
