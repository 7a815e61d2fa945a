"""The audit store as one service: topics, database, feed, ready file, wired once.

``serve`` runs it until ``stop`` (``ungebus audit-store``). The ready file says to a supervisor
(``ungebus run``) that the database is migrated and the consumer has its partitions; it is
removed at start (a stale one from a killed run must not look ready) and at exit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from bus.ready import ReadyFile
from bus.records import Publisher
from bus.topics import ensure_topics
from consumers.audit.feed import AuditFeed
from consumers.audit.migrate import migrate
from consumers.audit.settings import AuditSettings
from consumers.audit.store import AuditStore, connect


def serve(settings: AuditSettings, stop: threading.Event, echo: Callable[[str], None]) -> None:
    """Store every decision on ``audit.routing`` until ``stop``; close the consumer cleanly."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    ready = ReadyFile(settings.ready_file)
    ready.clear()
    topics = settings.topics
    wanted = {topics.audit_routing, topics.erasures, topics.deadletter}
    ensure_topics(settings.kafka_config(), [s for s in topics.catalogue() if s.name in wanted])
    engine = connect(settings.database_url)
    publisher: Publisher | None = None
    feed: AuditFeed | None = None
    try:
        migrate(engine)
        publisher = Publisher(settings.producer_config(), settings.audit_ack_timeout_s)
        feed = AuditFeed(settings, AuditStore(engine), publisher, on_assigned=ready.mark)
        echo(
            f"Audit store: {topics.audit_routing} at {settings.kafka_bootstrap_servers} into "
            f"{engine.url.render_as_string()} (group {settings.group_id})"
        )
        feed.run(stop)
    finally:
        ready.clear()
        if feed is not None:
            feed.close()
        if publisher is not None:
            publisher.close()
        engine.dispose()
    echo("Audit store stopped.")
