"""HTTP ingestion throughput beside a bare confluent-kafka producer: same broker, same payloads.

The partner API runs as its own process (``ungebus connect http``) so client and server do not
share one GIL; ``count`` dropout notices are posted by ``concurrency`` clients in flight, each
answered 202 only after Kafka acknowledged it. The baseline sends the very records the
connector produced (already encoded) with a bare producer of the same configuration. The
edge's CPU cost (validate, map, encode) and the HTTP floor (``GET /healthz``, same client and
server, no Kafka) are measured too, to explain the gap.

Run: ``.venv/bin/python bench/ingest_bench.py [--bootstrap HOST:PORT] [--count N]``; without
a bootstrap it starts a throwaway local broker.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import queue
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Producer

from bus.partners import load_partners, render_partner, token_sha256
from bus.topics import delete_topics, ensure_topics
from connectors.ingest import Outgoing, connector_topics, prepare
from connectors.settings import ConnectorSettings
from schemas import generate_payloads

KIND = "dropout_notice"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _payloads(count: int) -> list[dict[str, Any]]:
    today = dt.datetime.now(dt.UTC).date()
    batch = generate_payloads(
        seed=1, count=count, invalid_share=0.0, kinds=[KIND], reference_date=today
    )
    return batch.payloads[KIND]


def _post_all(
    url: str, token: str, bodies: list[dict[str, Any]], concurrency: int, path: str = ""
) -> tuple[float, list[float]]:
    """Post every body (or GET ``path`` as often, for the HTTP floor); (seconds, latencies).

    ``concurrency`` threads, each with its own keep-alive connection: httpx's async pool was
    itself the bottleneck here (about 135 requests/s with 32 in flight on a 2-core machine).
    """
    work: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while True:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                started = time.perf_counter()
                if path:
                    response = client.get(path)
                else:
                    response = client.post(f"/v1/events/{KIND}", json=body, headers=headers)
                if response.status_code not in (200, 202):
                    raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    return time.perf_counter() - started, latencies


def _start_api(settings: ConnectorSettings, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "UNGEBUS_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "UNGEBUS_TOPIC_PREFIX": settings.topic_prefix,
        "UNGEBUS_VAR_DIR": str(settings.var_dir),
        "UNGEBUS_PARTNERS_FILE": str(settings.partners_file),
    }
    command = [sys.executable, "-m", "bus", "connect", "http", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the partner API did not start within 60 s")


def run(bootstrap: str, count: int = 3000, concurrency: int = 16) -> dict[str, Any]:
    """Events/s acknowledged through HTTP, records/s of a bare producer, and their ratio."""
    with tempfile.TemporaryDirectory(prefix="ungebus-bench-") as tmp:
        var = Path(tmp)
        settings = ConnectorSettings(
            kafka_bootstrap_servers=bootstrap,
            topic_prefix=f"bench-{uuid.uuid4().hex[:8]}.",
            var_dir=var,
            partners_file=var / "partners.toml",
        )
        bodies = _payloads(count)
        sources = sorted({f"institution:{b['institution_number']}" for b in bodies})
        token = secrets.token_urlsafe(24)
        (var / "partners.toml").write_text(
            render_partner("bench", [KIND], sources, token_hash=token_sha256(token))
        )
        ensure_topics(settings.kafka_config(), connector_topics(settings.topics))

        # The edge's own CPU cost per event, and the records the baseline will send.
        partner = load_partners(var / "partners.toml").get("bench")
        assert partner is not None
        key = settings.pseudonym_key()
        started = time.perf_counter()
        records = [
            prepare(partner, KIND, body, pseudonym_key=key, topics=settings.topics)
            for body in bodies
        ]
        prepare_s = time.perf_counter() - started
        outgoing = [r for r in records if isinstance(r, Outgoing)]

        port = _free_port()
        api = _start_api(settings, port)
        try:
            url = f"http://127.0.0.1:{port}"
            _post_all(url, token, bodies[: min(50, count)], 4)  # warm-up
            http_s, latencies = _post_all(url, token, bodies, concurrency)
            floor_s, _ = _post_all(url, token, bodies, concurrency, "/healthz")
        finally:
            api.terminate()
            api.wait(30)

        producer = Producer(settings.producer_config())
        for out in outgoing[:50]:  # warm-up: connection, metadata, producer id
            producer.produce(out.topic, value=out.value, key=out.key, headers=out.headers)
        producer.flush(30)
        started = time.perf_counter()
        for out in outgoing:
            while True:
                try:
                    producer.produce(out.topic, value=out.value, key=out.key, headers=out.headers)
                    break
                except BufferError:
                    producer.poll(0.01)
            producer.poll(0)
        left = producer.flush(60)
        kafka_s = time.perf_counter() - started
        delete_topics(settings.kafka_config(), settings.topic_prefix)
        if left:
            raise RuntimeError(f"the bare producer left {left} records undelivered")

    latencies.sort()
    http_rate, kafka_rate = count / http_s, len(outgoing) / kafka_s
    return {
        "count": count,
        "concurrency": concurrency,
        "http_events_per_s": round(http_rate, 1),
        "http_latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "http_latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "bare_producer_records_per_s": round(kafka_rate, 1),
        "http_to_bare_ratio": round(http_rate / kafka_rate, 4),
        "http_floor_requests_per_s": round(count / floor_s, 1),
        "edge_prepare_events_per_s": round(count / prepare_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", help="Kafka host:port; default: a throwaway local broker")
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    bootstrap = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker = None
    if not bootstrap:
        from deploy.local.broker import LocalKafka

        home = Path(tempfile.mkdtemp(prefix="ungebus-bench-kafka-"))
        broker = LocalKafka(
            home=home, port=_free_port(), controller_port=_free_port(), secure=False
        )
        broker.up(echo=print)
        bootstrap = broker.bootstrap_servers
    try:
        figures = run(bootstrap, args.count, args.concurrency)
    finally:
        if broker is not None:
            broker.down(echo=print)
    print(f"ingest: {figures['count']} {KIND} events, {figures['concurrency']} in flight")
    print(
        f"  HTTP (202 after Kafka ack): {figures['http_events_per_s']:>10,.0f} events/s  "
        f"p50 {figures['http_latency_p50_ms']} ms, p99 {figures['http_latency_p99_ms']} ms"
    )
    print(
        f"  bare confluent-kafka:       {figures['bare_producer_records_per_s']:>10,.0f} records/s"
    )
    floor = figures["http_floor_requests_per_s"]
    print(f"  HTTP floor (GET /healthz):  {floor:>10,.0f} requests/s, same client and server")
    print(f"  ratio HTTP / bare:          {figures['http_to_bare_ratio']:>10.3f}")
    edge = figures["edge_prepare_events_per_s"]
    print(f"  edge validate+map+encode:   {edge:>10,.0f} events/s (one core, in-process)")


if __name__ == "__main__":
    main()
