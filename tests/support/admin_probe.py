"""Kafka's own Java admin client, asked for the cluster id (``AdminProbe.java``, run as a
single-file Java program on the broker's jars): for listeners librdkafka cannot talk to (a KRaft
controller's) and for client properties files written for Kafka's Java tools."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Literal

from deploy.local.java import DEPLOY_DIR, require_java

PROBE = Path(__file__).with_name("AdminProbe.java")


def ask_cluster_id(
    classpath: str, listener: Literal["controller", "server"], address: str, login: Path
) -> str:
    """``cluster <id>``, or ``refused: <why>`` (or the JVM's error)."""
    result = subprocess.run(
        [
            require_java(),
            "-cp",
            classpath,
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={login.parent}",  # not the working directory
            str(PROBE),
            listener,
            address,
            str(login),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout.strip() or result.stderr.strip()
