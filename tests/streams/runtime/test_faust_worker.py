"""faust, through aiokafka, works against the broker: a real worker consumes and produces."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from bus.settings import PROJECT_ROOT, Settings
from bus.waiting import within

pytestmark = pytest.mark.integration


def test_faust_worker_consumes_one_topic_and_produces_to_another(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    source, sink = new_topic("echo-in", partitions=2), new_topic("echo-out")
    producer = Producer(settings.producer_config())
    for i in range(5):
        producer.produce(source, key=f"k{i}".encode(), value=f"hello {i}".encode())
    assert producer.flush(30) == 0

    env = {
        **os.environ,
        "ECHO_APP_ID": unique("echo"),
        "ECHO_BROKER": kafka_bootstrap,
        "ECHO_DATADIR": str(tmp_path / "faust"),
        "ECHO_SOURCE": source,
        "ECHO_SINK": sink,
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.support.faust_echo_app", "worker", "-l", "warn"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    consumer = Consumer(settings.consumer_config(unique("check")))
    consumer.subscribe([sink])
    received: dict[bytes, bytes] = {}
    try:

        def worker_runs() -> None:
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""

        def all_received() -> bool:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                received[message.key()] = message.value()
            return len(received) >= 5

        within(all_received, 90, every_s=0, check=worker_runs)
    finally:
        consumer.close()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

    assert received == {f"k{i}".encode(): f"HELLO {i}".encode() for i in range(5)}
