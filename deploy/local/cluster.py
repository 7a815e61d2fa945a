"""A real KRaft cluster of several nodes on this machine: ``ungebus local up --brokers 3``.

Each node is one Java process, broker and controller in one (a :class:`LocalKafka` told its
node id and the quorum), with its own folder ``node-<id>`` (config, data, logs, pid) under the
cluster's home. The nodes are the controller quorum's voters, listed in
``controller.quorum.voters``: a static quorum, the form the single broker already uses, which
needs nothing at format time but the one cluster id every node shares. A dynamic quorum
(``controller.quorum.bootstrap.servers``, KIP-853) pays only when controllers are added or
removed, and nobody does that here: a node that is killed comes back as itself.

The cluster is secured as one broker is (deploy/local/security.py): one CA and one set of
credentials in the cluster's home; one broker certificate that every node presents (they all
run here, under one owner); inter-broker traffic over the clients' listener as admin; the
controllers' listener mutual TLS on loopback, that certificate mapped to admin, the one super
user. Internal topics get min(3, nodes) replicas and a majority of them in sync
(``min.insync.replicas=2`` of 3), so one node may die or hang with nothing acknowledged lost
and producers going on. Each node can be killed, paused, resumed and started on its own
(:class:`ClusterNode`), for the fault suite.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bus.ports import HOST, port_free
from bus.waiting import within
from deploy.local.broker import LocalKafka, new_cluster_id
from deploy.local.java import (
    LocalKafkaError,
    fetch_jars,
    paused,
    pid_alive,
    reap,
    require_java,
    stop_processes,
)
from deploy.local.readiness import (
    group_coordinator_ready,
    hands_out_producer_ids,
    registered_brokers,
)
from deploy.local.security import ADMIN, BrokerSecurity, SecurityError, upsert_credentials

if TYPE_CHECKING:
    from deploy.local.settings import LocalKafkaSettings

MAX_REPLICAS = 3


def cluster_home(settings: LocalKafkaSettings) -> Path:
    """The local cluster's home: beside the single broker's data, never mixed with it."""
    return settings.local_kafka_home / "cluster"


@dataclass(frozen=True)
class ClusterNode:
    """One node of a :class:`LocalCluster`: a process to kill, pause, resume and start."""

    cluster: LocalCluster
    broker: LocalKafka

    @property
    def node_id(self) -> int:
        return self.broker.node_id

    @property
    def bootstrap_servers(self) -> str:
        return self.broker.bootstrap_servers

    @property
    def pid(self) -> int | None:
        """Its process id while it runs (paused too), else None."""
        return self.broker.running_pid()

    def kill(self) -> None:
        """``kill -9``: no controlled shutdown, nothing flushed."""
        pid = self._running("kill")
        os.kill(pid, signal.SIGKILL)
        reap(pid)
        within(lambda: not pid_alive(pid), 30)
        self.broker.pid_file.unlink(missing_ok=True)

    def pause(self) -> None:
        """``SIGSTOP``: the process holds its ports and answers nobody until resumed."""
        pid = self._running("pause")
        os.kill(pid, signal.SIGSTOP)
        within(lambda: paused(pid), 10, every_s=0.05)

    def resume(self) -> None:
        """``SIGCONT`` after :meth:`pause`."""
        pid = self._running("resume")
        os.kill(pid, signal.SIGCONT)
        within(lambda: not paused(pid), 10, every_s=0.05)

    @property
    def is_paused(self) -> bool:
        return paused(self.pid)

    def stop(self, timeout_s: float = 60.0) -> None:
        """A clean stop (SIGTERM: controlled shutdown, leaders moved to the others)."""
        stop_processes([self._running("stop")], timeout_s)
        self.broker.pid_file.unlink(missing_ok=True)

    def start(self) -> None:
        """Start it again (its data kept) and wait until the cluster lists it once more."""
        if self.pid is not None:
            raise LocalKafkaError(f"node {self.node_id} is already running (pid {self.pid})")
        java = require_java()
        self.broker.prepare(java, self.cluster.cluster_id())
        self.broker.await_answer(self.broker.spawn(java))
        self.cluster.await_registered()

    def _running(self, what: str) -> int:
        pid = self.pid
        if pid is None:
            raise LocalKafkaError(f"cannot {what} node {self.node_id}: it is not running")
        return pid


@dataclass(frozen=True)
class LocalCluster:
    """Several local KRaft nodes under one ``home``, node ``i`` listening on ``ports[i]``
    (clients) and ``controller_ports[i]`` (its controller, loopback)."""

    home: Path
    ports: tuple[int, ...]
    controller_ports: tuple[int, ...]
    heap: str = "384m"
    start_timeout_s: float = 120.0
    secure: bool = True

    def __post_init__(self) -> None:
        everything = [*self.ports, *self.controller_ports]
        if len(self.ports) != len(self.controller_ports) or len(set(everything)) != len(everything):
            raise LocalKafkaError(
                f"a local cluster needs two distinct ports per node, got {self.ports} and "
                f"{self.controller_ports}; set UNGEBUS_LOCAL_KAFKA_PORT and "
                "UNGEBUS_LOCAL_KAFKA_CONTROLLER_PORT further apart"
            )

    @classmethod
    def from_settings(cls, settings: LocalKafkaSettings, size: int | None = None) -> LocalCluster:
        """``size`` nodes (default: the setting's) on the ports after the settings' ports,
        two apart: 9092/9093, 9094/9095, 9096/9097."""
        count = size or settings.local_kafka_brokers
        return cls(
            home=cluster_home(settings),
            ports=tuple(settings.local_kafka_port + 2 * i for i in range(count)),
            controller_ports=tuple(
                settings.local_kafka_controller_port + 2 * i for i in range(count)
            ),
            heap=settings.local_kafka_node_heap,
            start_timeout_s=settings.local_kafka_start_timeout_s,
            secure=settings.kafka_security != "plaintext",
        )

    # -- where things are -------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.ports)

    @property
    def replication_factor(self) -> int:
        """Replicas of every topic here: one per node, at most three."""
        return min(MAX_REPLICAS, self.size)

    @property
    def nodes(self) -> tuple[ClusterNode, ...]:
        voters = ",".join(
            f"{i}@{HOST}:{port}" for i, port in enumerate(self.controller_ports, start=1)
        )
        return tuple(
            ClusterNode(
                self,
                LocalKafka(
                    home=self.home / f"node-{i}",
                    port=port,
                    controller_port=controller_port,
                    heap=self.heap,
                    start_timeout_s=self.start_timeout_s,
                    secure=self.secure,
                    node_id=i,
                    voters=voters,
                    replicas=self.replication_factor,
                    security_home=self.home,
                ),
            )
            for i, (port, controller_port) in enumerate(
                zip(self.ports, self.controller_ports, strict=True), start=1
            )
        )

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes)

    @property
    def security(self) -> BrokerSecurity:
        """The cluster's one CA, broker certificate and credentials (under ``home``)."""
        return BrokerSecurity(self.home)

    @property
    def security_summary(self) -> str:
        return self.nodes[0].broker.security_summary

    def client_env(self, principal: str = ADMIN) -> dict[str, str]:
        """``UNGEBUS_*`` variables for a client of this cluster, as ``principal``: its login,
        and the replication factor of the topics it creates."""
        return {
            **self.nodes[0].broker.client_env(principal),
            "UNGEBUS_REPLICATION_FACTOR": str(self.replication_factor),
        }

    def client_config(self, principal: str = ADMIN) -> dict[str, str]:
        """The librdkafka configuration of a client of this cluster, as ``principal``."""
        conf = self.nodes[0].broker.client_config(principal)
        return {**conf, "bootstrap.servers": self.bootstrap_servers}

    def kafka_version(self) -> str | None:
        return self.nodes[0].broker.kafka_version()

    def cluster_id(self) -> str:
        """The id every node's storage is formatted with: made once, kept in ``home``."""
        path = self.home / "cluster-id"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id() + "\n")
        return path.read_text().strip()

    # -- state ------------------------------------------------------------------------------
    def pids(self) -> dict[int, int]:
        """node id -> pid of every node that runs."""
        return {node.node_id: pid for node in self.nodes if (pid := node.pid) is not None}

    def running_pid(self) -> int | None:
        """A running node's pid (the first), None when no node runs."""
        return next(iter(self.pids().values()), None)

    # -- lifecycle --------------------------------------------------------------------------
    def up(self, echo: Callable[[str], None] = print) -> bool:
        """Start every node that does not run, wait until the cluster is ready; False when
        every node was already running."""
        missing = [node for node in self.nodes if node.pid is None]
        if not missing:
            echo(f"The Kafka cluster runs at {self.bootstrap_servers}; nothing to do.")
            return False
        java = require_java()
        fetch_jars(echo)
        for node in missing:
            for port in (node.broker.port, node.broker.controller_port):
                if not port_free(port):
                    raise LocalKafkaError(
                        f"port {port} (node {node.node_id}) is in use by another process (the "
                        "single local broker? ungebus local down); set UNGEBUS_LOCAL_KAFKA_PORT "
                        "and UNGEBUS_LOCAL_KAFKA_CONTROLLER_PORT to use others"
                    )
        cluster_id = self.cluster_id()
        if self.secure:  # once, before the nodes are prepared side by side
            self.security.ensure([])
        with ThreadPoolExecutor(len(missing)) as pool:  # formatting is a JVM each, seconds
            list(pool.map(lambda node: node.broker.prepare(java, cluster_id), missing))
        # All at once: a node alone cannot answer, its controller has no quorum yet.
        started = [(node, node.broker.spawn(java)) for node in missing]
        try:
            for node, process in started:
                node.broker.await_answer(process)
            self._await_ready()
        except LocalKafkaError:  # the nodes started here go again; those that ran stay
            stop_processes([pid for node, _ in started if (pid := node.pid) is not None], 20)
            raise
        echo(
            f"Kafka {self.kafka_version()} is up as a cluster of {self.size} nodes at "
            f"{self.bootstrap_servers} (data: {self.home}); topics get "
            f"{self.replication_factor} replicas, UNGEBUS_REPLICATION_FACTOR="
            f"{self.replication_factor} (ungebus local env)"
        )
        echo(f"Kafka is {self.security_summary}")
        return True

    def await_registered(self) -> None:
        """Wait until the metadata lists every node as a broker."""
        config = self.client_config()
        if not within(lambda: registered_brokers(config) == self.size, self.start_timeout_s):
            raise LocalKafkaError(
                f"the local cluster did not list its {self.size} brokers within "
                f"{self.start_timeout_s:.0f} s (listed: {registered_brokers(config)}); "
                f"the nodes' logs are in {self.home}/node-*/logs"
            )

    def _await_ready(self) -> None:
        self.await_registered()
        config = self.client_config()
        if self.secure:
            try:
                upsert_credentials(config, self.security)
            except SecurityError as exc:
                raise LocalKafkaError(str(exc)) from exc
        ready = hands_out_producer_ids(config, self.start_timeout_s) and within(
            lambda: group_coordinator_ready(config, self.replication_factor),
            self.start_timeout_s,
            every_s=0.5,
        )
        if not ready:
            raise LocalKafkaError(
                f"the local cluster at {self.bootstrap_servers} answers but handed out no "
                f"producer id or had no group coordinator within {self.start_timeout_s:.0f} s; "
                f"the nodes' logs are in {self.home}/node-*/logs"
            )

    def down(self, echo: Callable[[str], None] = print, timeout_s: float = 60.0) -> bool:
        """Stop every node cleanly, all at once (SIGTERM while the quorum still stands);
        False when none ran."""
        pids = self.pids()
        if not pids:
            echo("The Kafka cluster is not running; nothing to stop.")
            return False
        if not stop_processes(list(pids.values()), timeout_s):
            echo(f"Kafka cluster nodes did not stop within {timeout_s:.0f} s; killed them.")
        for node in self.nodes:
            node.broker.pid_file.unlink(missing_ok=True)
        echo(f"Kafka cluster at {self.bootstrap_servers} stopped ({len(pids)} nodes).")
        return True

    def status(self) -> str:
        pids = self.pids()
        if not pids:
            return (
                f"The Kafka cluster of {self.size} nodes is not running (would listen on "
                f"{self.bootstrap_servers})."
            )
        lines = [
            f"Kafka {self.kafka_version()} runs as a cluster of {self.size} nodes "
            f"({len(pids)} running) at {self.bootstrap_servers}; {self.security_summary}."
        ]
        for node in self.nodes:
            broker = node.broker
            pid = pids.get(node.node_id)
            state = (
                f"pid {pid}{', PAUSED' if paused(pid) else ''}, log {broker.log_file}"
                if pid is not None
                else "NOT running (ungebus local up starts it)"
            )
            lines.append(
                f"  node {node.node_id} at {broker.bootstrap_servers} (controller "
                f"{HOST}:{broker.controller_port}): {state}"
            )
        return "\n".join(lines)

    def wipe(self) -> None:
        """Remove every node's data and logs, and the cluster id (no node may run); the CA
        and credentials are kept."""
        if self.pids():
            raise LocalKafkaError("stop the cluster first: ungebus local down")
        for node_dir in self.home.glob("node-*"):
            shutil.rmtree(node_dir, ignore_errors=True)
        (self.home / "cluster-id").unlink(missing_ok=True)


def running_cluster(settings: LocalKafkaSettings) -> LocalCluster | None:
    """The local cluster when one of its nodes runs (however many nodes the settings now say:
    its node folders tell), else None."""
    size = len(list(cluster_home(settings).glob("node-*")))
    if size < 1:
        return None
    cluster = LocalCluster.from_settings(settings, size=size)
    return cluster if cluster.pids() else None


def local_kafka(settings: LocalKafkaSettings) -> LocalKafka | LocalCluster:
    """The configured local Kafka: the single broker, or a cluster of
    ``UNGEBUS_LOCAL_KAFKA_BROKERS`` nodes."""
    if settings.local_kafka_brokers > 1:
        return LocalCluster.from_settings(settings)
    return LocalKafka.from_settings(settings)
