"""The whole bus as ``make run`` starts it (``deploy.local.stack.Stack``): every component a
real process on the session's broker, for the end-to-end tests. On the project's own local
broker the stack applies the ACLs and runs each component under its own principal."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bus.ports import free_port_run, free_ports
from deploy.local.broker import LocalKafka
from deploy.local.settings import METRICS_PORT_COUNT, StackSettings
from deploy.local.stack import Stack


@contextmanager
def running_stack(
    kafka_bootstrap: str,
    local_broker: LocalKafka | None,
    var_dir: Path,
    label: str,
    **env: str,
) -> Iterator[StackSettings]:
    """The stack up on a bus of its own (a unique topic prefix, free ports), with ``env`` for
    its components besides the HTTP and inbox ports; down afterwards."""
    http_port, inbox_port = free_ports(2)
    local: dict[str, Any] = {}
    if local_broker is not None:
        local = {
            "local_kafka_home": local_broker.home,
            "local_kafka_port": local_broker.port,
            "local_kafka_controller_port": local_broker.controller_port,
            "kafka_security": "secured" if local_broker.secure else "plaintext",
        }
    settings = StackSettings(
        **local,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"{label}-{uuid.uuid4().hex[:8]}.",
        var_dir=var_dir,
        http_port=http_port,
        inbox_port=inbox_port,
        metrics_port_base=free_port_run(METRICS_PORT_COUNT),
    )
    stack = Stack(settings, echo=lambda _: None)
    stack.supervisor.env.update(
        {"UNGEBUS_HTTP_PORT": str(http_port), "UNGEBUS_INBOX_PORT": str(inbox_port), **env}
    )
    try:
        stack.up(threading.Event(), 120)
        yield settings
    finally:
        stack.down()
