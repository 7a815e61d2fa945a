"""A partner load for the fault suite: synthetic events posted to the real HTTP connector from
a thread, each retried on 503 as a partner would (same event id), every 202 remembered.

What a 202 acknowledged is what the checker (:mod:`tests.support.fault_check`) holds the bus
to: each such event routed, its tasks there once each, whatever was killed meanwhile.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bus.settings import Settings
from deploy.local.cluster import LocalCluster
from schemas import generate_payloads
from tests.support.harness import settings_env
from tests.support.partner_payloads import partner_name, write_partners


def cluster_login(cluster: LocalCluster) -> dict[str, Any]:
    """Settings fields of a client of ``cluster`` as admin (bootstrap, login, replicas); the
    session broker's password, if set in this process's environment, does not apply."""
    login = {k.removeprefix("UNGEBUS_").lower(): v for k, v in cluster.client_env().items()}
    return {
        "kafka_bootstrap_servers": cluster.bootstrap_servers,
        "kafka_sasl_password": None,
        **login,
    }


def cluster_env(cluster: LocalCluster, settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a component process on ``cluster`` with ``settings``'s bus."""
    env = settings_env(settings, **cluster.client_env(), **extra)
    env.pop("UNGEBUS_KAFKA_SASL_PASSWORD", None)
    return env


KINDS = ("dropout_notice", "release_planning")  # both become tasks for a unit


@dataclass(frozen=True)
class Accepted:
    kind: str
    payload: dict[str, Any]

    @property
    def event_id(self) -> str:
        return str(self.payload["event_id"])


def partner_events(count: int, seed: int = 11) -> list[tuple[str, dict[str, Any]]]:
    """``count`` valid synthetic events of :data:`KINDS`, each with an event id of its own
    (a few hundred people and sources, each sending again and again)."""
    batch = generate_payloads(
        seed=seed, count=2000, invalid_share=0.0, reference_date=dt.date.today()
    )
    base = [(kind, payload) for kind in KINDS for payload in batch.payloads.get(kind, [])]
    return [
        (kind, payload | {"event_id": str(uuid.uuid4())})
        for kind, payload in itertools.islice(itertools.cycle(base), count)
    ]


def partners_file(path: Path, events: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """A partners file whose partners may send exactly ``events``; name -> bearer token."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for kind, payload in events:
        by_kind.setdefault(kind, []).append(payload)
    return write_partners(path, by_kind)


@dataclass
class HttpLoad:
    """Posts ``events`` to ``url`` at about ``rate_per_s`` in all, from ``workers`` partners
    at once, until they are all acknowledged or :meth:`stop`; a 503 is retried after a short
    pause, as its Retry-After asks."""

    url: str
    tokens: dict[str, str]
    events: list[tuple[str, dict[str, Any]]]
    rate_per_s: float = 50.0
    workers: int = 1
    accepted: list[Accepted] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0
    """The longest a single answer took (a 503 must come within the ack timeout, not hang)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> HttpLoad:
        for n in range(self.workers):
            share = self.events[n :: self.workers]
            thread = threading.Thread(
                target=self._run, args=(share,), name=f"load-{n}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self, timeout_s: float = 60.0) -> list[Accepted]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        return list(self.accepted)

    @property
    def done(self) -> bool:
        return bool(self._threads) and not any(t.is_alive() for t in self._threads)

    def _run(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        rate = self.rate_per_s / self.workers
        with httpx.Client(base_url=self.url, timeout=30) as http:
            started = time.monotonic()
            for n, (kind, payload) in enumerate(events):
                pause = started + n / rate - time.monotonic()
                if pause > 0 and self._stop.wait(pause):
                    return
                if not self._post_until_accepted(http, kind, payload):
                    return

    def _post_until_accepted(self, http: httpx.Client, kind: str, payload: dict[str, Any]) -> bool:
        headers = {"Authorization": f"Bearer {self.tokens[partner_name(kind)]}"}
        while not self._stop.is_set():
            asked = time.monotonic()
            try:
                answer = http.post(f"/v1/events/{kind}", json=payload, headers=headers)
                took = time.monotonic() - asked
                with self._lock:
                    self.slowest_s = max(self.slowest_s, took)
            except httpx.HTTPError as exc:  # the connector itself down: try again
                with self._lock:
                    self.answers[type(exc).__name__] += 1
                self._stop.wait(0.5)
                continue
            with self._lock:
                self.answers[str(answer.status_code)] += 1
                if answer.status_code == 202:
                    self.accepted.append(Accepted(kind, payload))
            if answer.status_code == 202:
                return True
            assert answer.status_code == 503, answer.text  # anything else is a bug
            self._stop.wait(0.5)
        return False
