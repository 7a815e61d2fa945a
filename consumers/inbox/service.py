"""The inbox as one service: database, accounts, Kafka feed and web app, wired once.

``Inbox.open(settings)`` builds it; ``serve`` runs it in the foreground (``ungebus inbox``);
``BackgroundServer`` runs the web app in a thread (for ``serve`` and the tests).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from bus.keystore import KafkaKeyring, keyring_for
from bus.limits import check_topics
from bus.processes import stop_on_signals
from bus.records import Publisher
from bus.retention import RetentionTable, default_retention
from bus.services import INBOX_SESSION_KEY, INBOX_SIGN_IN_FILE
from bus.topics import ensure_topics
from bus.waiting import within
from consumers.inbox.acks_log import AcksLog
from consumers.inbox.caseworkers import AccountsError, Caseworkers, DemoAccount, ensure_demo_account
from consumers.inbox.feed import TaskFeed, utc_now
from consumers.inbox.migrate import migrate
from consumers.inbox.pending import PendingTakeOvers
from consumers.inbox.purge import TASKS_CLASS, Purge, closed_before, purge_closed
from consumers.inbox.settings import InboxSettings
from consumers.inbox.sign_in_limits import Limit, SignInLimits
from consumers.inbox.store import TaskStore, connect
from consumers.inbox.take_over import TakeOverService
from consumers.inbox.views import zone
from consumers.inbox.web import Services, create_app

log = logging.getLogger(__name__)
SETTLE_EVERY_S = 5.0  # how often noted take-overs are looked for (one indexed query)


def inbox_topics(settings: InboxSettings) -> set[str]:
    """Every topic the inbox reads or writes."""
    topics = settings.topics
    return {
        *settings.task_topics,
        *settings.escalation_topics,
        settings.acks_topic,
        topics.deadletter,
        topics.erasures,
        topics.keys,  # read only: the data keys of its tasks' people
    }


def sign_in_limits(settings: InboxSettings) -> SignInLimits:
    window = settings.inbox_sign_in_window_s
    return SignInLimits(
        per_account=Limit(settings.inbox_sign_in_failures_per_account, window),
        per_address=Limit(settings.inbox_sign_in_failures_per_address, window),
    )


def session_secret(settings: InboxSettings) -> str:
    """From settings; else a random key made once in var_dir (mode 0600), kept across restarts."""
    if settings.inbox_session_secret is not None:
        return settings.inbox_session_secret.get_secret_value()
    path = settings.var_dir / INBOX_SESSION_KEY
    if not path.exists():
        _write_private(path, secrets.token_hex(32), exclusive=True)
    return path.read_text().strip()


def _write_private(path: Path, content: str, *, exclusive: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return  # another process made it first
    with os.fdopen(fd, "w") as out:
        out.write(content)


@dataclass
class Inbox:
    settings: InboxSettings
    engine: Engine
    store: TaskStore
    publisher: Publisher
    feed: TaskFeed
    app: FastAPI
    take_overs: TakeOverService
    clock: Callable[[], dt.datetime] = utc_now
    demo: DemoAccount | None = None
    retention: RetentionTable = field(default_factory=default_retention)
    keyring: KafkaKeyring | None = None  # unseals tasks' details, seals take-overs' notes
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    feed_failure: BaseException | None = None  # why the feed stopped on its own, if it did

    @classmethod
    def open(cls, settings: InboxSettings, clock: Callable[[], dt.datetime] = utc_now) -> Inbox:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        retention = default_retention()
        closed_before(clock(), retention.data_class(TASKS_CLASS))  # a table it cannot use stops it
        wanted = inbox_topics(settings)
        specs = [spec for spec in settings.topics.catalogue() if spec.name in wanted]
        ensure_topics(settings.kafka_config(), specs)
        written = [settings.topics.deadletter, settings.acks_topic]
        check_topics(settings.kafka_config(), settings.producer_message_max_bytes, written)
        engine = connect(settings.database_url)
        migrate(engine)
        demo = None
        if settings.inbox_demo_account:
            demo = ensure_demo_account(
                settings.users_file, settings.inbox_kommunekode, settings.inbox_units[0]
            )
            if demo is not None:
                _write_private(
                    settings.var_dir / INBOX_SIGN_IN_FILE,
                    f"staff id: {demo.staff_id}\npassword: {demo.password}\n"
                    f"api token: {demo.api_token}\n",
                )
        if not settings.users_file.exists():
            raise AccountsError(
                f"no caseworker accounts at {settings.users_file}: add one with "
                "`ungebus inbox add-caseworker`"
            )
        store = TaskStore(engine)
        keyring = keyring_for(settings)
        # librdkafka gives a take-over up when the caseworker is told it failed, not minutes
        # later: what was not delivered by then never will be (consumers.inbox.pending).
        ack_timeout_ms = int(settings.inbox_ack_timeout_s * 1000)
        publisher = Publisher(
            settings.producer_config(**{"message.timeout.ms": ack_timeout_ms}),
            settings.inbox_ack_timeout_s + 1,
        )
        take_overs = TakeOverService(
            store,
            publisher,
            PendingTakeOvers(engine),
            AcksLog(settings, settings.inbox_ack_timeout_s),
            acks_topic=settings.acks_topic,
            settle_s=settings.inbox_ack_timeout_s + 5,
            limits=settings.record_limits,
            keys=keyring,
        )
        services = Services(
            settings=settings,
            store=store,
            caseworkers=Caseworkers(settings.users_file),
            take_overs=take_overs,
            clock=clock,
            tz=zone(settings.inbox_timezone),
            sign_ins=sign_in_limits(settings),
        )
        app = create_app(services, session_secret(settings))
        feed = TaskFeed(settings, store, publisher, clock, keyring=keyring)
        return cls(
            settings, engine, store, publisher, feed, app, take_overs, clock, demo, retention,
            keyring,
        )  # fmt: skip

    def purge_closed(self) -> Purge | None:
        """Delete the closed tasks past their retention (``consumers.inbox.purge``); a failure
        is logged and tried again on the next round."""
        try:
            purge = purge_closed(self.engine, self.retention, self.clock())
        except Exception:
            log.exception("Could not purge closed tasks; trying again in the next round")
            return None
        if purge.tasks:
            log.info("Purge: %s", purge)
        return purge

    def settle_take_overs(self) -> None:
        """Settle take-overs a stopped inbox left noted (``consumers.inbox.pending``); a failure
        is logged and tried again on the next round."""
        try:
            settled = self.take_overs.settle(self.clock())
        except Exception:
            log.exception("Could not settle noted take-overs; trying again shortly")
            return
        if settled:
            log.info("Settled %d take-over(s) a stopped inbox had noted", settled)

    def start_feed(self) -> None:
        def run() -> None:
            try:
                self.feed.run(self._stop)
            except Exception as exc:
                log.critical("The inbox's Kafka feed stopped: %s", exc)
                self.feed_failure = exc

        self._thread = threading.Thread(target=run, name="inbox-feed", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.feed.close()  # leave the consumer group now, so a successor need not wait
        self.publisher.close()
        if self.keyring is not None:
            self.keyring.close()
        self.engine.dispose()


class InboxFailed(RuntimeError):
    """The web server did not start or stopped, or the Kafka feed stopped, on its own."""


class BackgroundServer:
    """uvicorn in a daemon thread; port 0 picks a free port (see ``url``).

    In a thread uvicorn leaves the process's signals alone: whoever runs it decides what a
    SIGTERM does (``serve``)."""

    def __init__(
        self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="inbox-web", daemon=True)
        self.url = ""

    def start(self, timeout_s: float = 30.0) -> str:
        self._thread.start()

        def alive() -> None:
            if not self._thread.is_alive():
                raise InboxFailed("the inbox web server stopped while starting")

        started = lambda: self._server.started  # noqa: E731
        if not within(started, timeout_s, every_s=0.02, check=alive):
            raise InboxFailed(f"the inbox web server did not start in {timeout_s:g} s")
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)


def serve(settings: InboxSettings, echo: Callable[[str], None]) -> None:
    """Run the feed and the web app until SIGTERM or Ctrl-C; then close everything in order.

    The signals are ours, not uvicorn's: uvicorn (0.29 and later) raises a SIGTERM again once
    its own shutdown is done, which ended the process before any ``finally`` ran, so the
    feed's consumer never closed (a restarted inbox then waited out its predecessor's session
    before it read a task), the last take-overs' producer was not flushed, and the last spans
    were lost. Here the web server stops first (no new take-overs), then the feed (its last
    batch committed, the consumer closed), the producer (flushed), the database.
    """
    stop = threading.Event()
    stop_on_signals(stop, echo)
    inbox = Inbox.open(settings)
    server = BackgroundServer(inbox.app, settings.inbox_host, settings.inbox_port, "info")
    try:
        if inbox.demo is not None:
            echo(
                f"Demo caseworker created for {settings.inbox_units[0]} in "
                f"{settings.inbox_kommunekode}: staff id {inbox.demo.staff_id}, password "
                f"{inbox.demo.password} (also in {settings.var_dir / INBOX_SIGN_IN_FILE})"
            )
        inbox.start_feed()
        url = server.start()
        echo(
            f"Inbox for {settings.inbox_kommunekode} ({', '.join(settings.inbox_units)}) on "
            f"{url}/ - Kafka at {settings.kafka_bootstrap_servers}, tasks in "
            f"{inbox.engine.url.render_as_string()}"
        )
        settled_at = 0.0
        purged_at = -math.inf  # the first purge at start
        while not stop.wait(0.5):
            if time.monotonic() - settled_at > SETTLE_EVERY_S:
                inbox.settle_take_overs()
                settled_at = time.monotonic()
            if time.monotonic() - purged_at > settings.inbox_purge_interval_s:
                inbox.purge_closed()
                purged_at = time.monotonic()
            if not server.running:
                raise InboxFailed("the inbox web server stopped on its own")
            if inbox.feed_failure is not None:
                raise InboxFailed(f"the inbox's Kafka feed stopped: {inbox.feed_failure}")
    finally:
        server.stop()
        inbox.close()
    echo("The inbox stopped: its tasks are stored and their offsets committed.")
