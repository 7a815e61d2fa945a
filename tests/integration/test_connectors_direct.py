"""The direct-Kafka example runs and writes a record by the same rules as the connectors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from schemas import decode
from tests.integration.test_connectors_http import (
    CE_HEADERS,
    TRACEPARENT,
    connector_settings,
    read_all,
)


def test_the_direct_kafka_example_publishes_a_well_formed_record(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    settings = connector_settings(kafka_bootstrap, unique("t"), tmp_path)
    env = {
        **os.environ,
        "UNGEBUS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "UNGEBUS_TOPIC_PREFIX": settings.topic_prefix,
        "UNGEBUS_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "connectors.examples.direct_kafka"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "stored at" in result.stdout
    (message,) = read_all(settings)
    decoded = decode(message.value())
    headers = dict(message.headers())
    assert decoded.name == "dropout_notice"
    assert message.topic() == settings.topics.inbound("dropout_notice")
    assert (
        message.key()
        == headers["ce_subject"]
        == decoded.record["envelope"]["subject"]["pseudonym"].encode()
    )
    assert set(headers) >= CE_HEADERS and TRACEPARENT.fullmatch(headers["traceparent"])
    assert headers["ce_id"].decode() in result.stdout
