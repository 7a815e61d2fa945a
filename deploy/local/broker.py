"""A real single-node Apache Kafka broker (KRaft) on this machine, without Docker.

The broker jars come from Maven Central through ``deploy/local/pom.xml``; the broker runs as a
detached Java process whose pid, data and logs live under one home folder. Everything the
operator can get wrong (no Java, no Maven, a taken port, a broker that will not start) becomes
a :class:`LocalKafkaError` with a message that says what to do.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from bus import services
from bus.ports import HOST, port_free
from bus.topics import min_insync_replicas
from bus.waiting import within
from deploy.local.java import (
    DEPLOY_DIR,
    LocalKafkaError,
    fetch_jars,
    is_our_broker,
    pid_alive,
    require_java,
    tail,
)
from deploy.local.readiness import answers_metadata, hands_out_producer_ids
from deploy.local.security import ADMIN, BrokerSecurity, SecurityError, upsert_credentials

if TYPE_CHECKING:
    from deploy.local.settings import LocalKafkaSettings


@dataclass(frozen=True)
class LocalKafka:
    """One local broker: where it lives (``home``) and where it listens."""

    home: Path
    port: int = services.LOCAL_KAFKA_PORT
    controller_port: int = services.LOCAL_KAFKA_CONTROLLER_PORT
    heap: str = "768m"
    start_timeout_s: float = 90.0
    port_setting: str = "UNGEBUS_LOCAL_KAFKA_PORT"
    secure: bool = True
    """SASL_SSL + SCRAM-SHA-512 and the StandardAuthorizer (deploy/local/security.py); False
    only for ``UNGEBUS_KAFKA_SECURITY=plaintext``, an open broker."""
    # A node of a local cluster (deploy/local/cluster.py): its id, the quorum's voters, its
    # internal topics' replicas, the cluster's CA and credentials. A single broker: 1, alone.
    node_id: int = 1
    voters: str = ""
    replicas: int = 1
    security_home: Path | None = None

    @classmethod
    def from_settings(cls, settings: LocalKafkaSettings) -> LocalKafka:
        return cls(
            home=settings.local_kafka_home,
            port=settings.local_kafka_port,
            controller_port=settings.local_kafka_controller_port,
            heap=settings.local_kafka_heap,
            start_timeout_s=settings.local_kafka_start_timeout_s,
            secure=settings.kafka_security != "plaintext",
        )

    # -- where things are -------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def security(self) -> BrokerSecurity:
        """Its CA, certificate and credentials (under ``home``)."""
        return BrokerSecurity(self.security_home or self.home)

    def client_env(self, principal: str = ADMIN) -> dict[str, str]:
        """``UNGEBUS_KAFKA_*`` variables for a client of this broker, as ``principal``."""
        if not self.secure:
            return {"UNGEBUS_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
        return self.security.client_env(principal)

    def client_config(self, principal: str = ADMIN) -> dict[str, str]:
        """The librdkafka configuration of a client of this broker, as ``principal``."""
        conf = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": "PLAINTEXT"}
        if self.secure:
            conf.update(
                {
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanism": "SCRAM-SHA-512",
                    "sasl.username": principal,
                    "sasl.password": self.security.password(principal).get_secret_value(),
                    "ssl.ca.location": str(self.security.ca_cert),
                }
            )
        return conf

    @property
    def mode_file(self) -> Path:
        """Written when storage is formatted: ``secured`` or ``plaintext``."""
        return self.data_dir / "ungebus-security"

    @property
    def security_summary(self) -> str:
        if not self.secure:
            return (
                "PLAINTEXT: no authentication, no ACLs: anyone who reaches the port reads and "
                "writes every topic"
            )
        return (
            f"secured: SASL_SSL + SCRAM-SHA-512, CA {self.security.ca_cert}, "
            f"credentials in {self.security.credentials_dir}"
        )

    @property
    def lib_dir(self) -> Path:
        return DEPLOY_DIR / ".kafka" / "lib"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "server.log"

    @property
    def console_file(self) -> Path:
        return self.log_dir / "console.log"

    # -- state ------------------------------------------------------------------------------
    def running_pid(self) -> int | None:
        """The pid of our broker if it is alive, else None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if is_our_broker(pid, self.config_file):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def kafka_version(self) -> str | None:
        jars = sorted(self.lib_dir.glob("kafka_2.13-*.jar"))
        if not jars:
            return None
        return jars[-1].name.removeprefix("kafka_2.13-").removesuffix(".jar")

    # -- lifecycle --------------------------------------------------------------------------
    def up(self, echo: Callable[[str], None] = print) -> bool:
        """Start the broker unless it runs; return False when it was already running."""
        pid = self.running_pid()
        if pid is not None:
            echo(
                f"Kafka is already running at {self.bootstrap_servers} (pid {pid}); nothing to do."
            )
            return False
        java = require_java()
        fetch_jars(echo)
        for port in (self.port, self.controller_port):
            if not port_free(port):
                raise LocalKafkaError(
                    f"port {port} is in use by another process; set {self.port_setting} "
                    "(and UNGEBUS_LOCAL_KAFKA_CONTROLLER_PORT) to use another"
                )
        self.prepare(java)
        self.await_answer(self.spawn(java))
        if self.secure:
            try:
                upsert_credentials(self.client_config(), self.security)
            except SecurityError as exc:
                raise LocalKafkaError(str(exc)) from exc
        if not hands_out_producer_ids(self.client_config(), self.start_timeout_s):
            raise LocalKafkaError(
                f"Kafka at {self.bootstrap_servers} answers but gave no producer id within "
                f"{self.start_timeout_s:.0f} s (its controller may be stuck); the end of its "
                f"log ({self.log_file}):\n{self._log_tail()}"
            )
        echo(f"Kafka {self.kafka_version()} is up at {self.bootstrap_servers} (data: {self.home})")
        echo(f"Kafka is {self.security_summary}")
        return True

    def down(self, echo: Callable[[str], None] = print, timeout_s: float = 60.0) -> bool:
        """Stop the broker cleanly (SIGTERM, controlled shutdown); False when none ran."""
        pid = self.running_pid()
        if pid is None:
            echo("Kafka is not running; nothing to stop.")
            return False
        os.kill(pid, signal.SIGTERM)
        if not within(lambda: not pid_alive(pid), timeout_s):
            echo(f"Kafka (pid {pid}) did not stop within {timeout_s:.0f} s; killing it.")
            os.kill(pid, signal.SIGKILL)
            within(lambda: not pid_alive(pid), 10)
        self.pid_file.unlink(missing_ok=True)
        echo(f"Kafka at {self.bootstrap_servers} stopped.")
        return True

    def status(self) -> str:
        pid = self.running_pid()
        if pid is None:
            return f"Kafka is not running (would listen on {self.bootstrap_servers})."
        return (
            f"Kafka {self.kafka_version()} is running at {self.bootstrap_servers} "
            f"(pid {pid}, data {self.data_dir}, log {self.log_file}); {self._running_mode()}."
        )

    def _running_mode(self) -> str:
        """How the running broker was configured (its config file, not this object's wish)."""
        try:
            secured = "SASL_SSL" in self.config_file.read_text()
        except OSError:
            secured = self.secure
        if secured == self.secure:
            return self.security_summary
        return (
            "it runs "
            + ("secured" if secured else "PLAINTEXT (open to anyone who reaches the port)")
            + ", not as now configured; restart it (ungebus local down && ungebus local up)"
        )

    def wipe(self) -> None:
        """Remove data and logs (the broker must be stopped)."""
        if self.running_pid() is not None:
            raise LocalKafkaError("stop the broker first: ungebus local down")
        shutil.rmtree(self.home / "data", ignore_errors=True)
        shutil.rmtree(self.home / "logs", ignore_errors=True)

    def prepare(self, java: str, cluster_id: str | None = None) -> None:
        """Its config written, its storage formatted (once, as part of ``cluster_id``)."""
        self._write_config()
        self._format_storage_if_needed(java, cluster_id or new_cluster_id())

    # -- internals --------------------------------------------------------------------------
    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        template = Template((DEPLOY_DIR / "server.properties.template").read_text())
        if self.secure:
            self.security.ensure_certificates()
            listeners = self.security.server_properties(HOST, self.port, self.controller_port)
        else:
            listeners = _PLAINTEXT_LISTENERS.format(
                host=HOST, port=self.port, controller_port=self.controller_port
            )
        text = template.substitute(
            node_id=self.node_id,
            voters=self.voters or f"{self.node_id}@{HOST}:{self.controller_port}",
            data_dir=self.data_dir,
            listeners=listeners,
            replicas=self.replicas,
            min_insync_replicas=min_insync_replicas(self.replicas),
        )
        # 0600: a secured broker's file holds admin's password (its inter-broker login).
        fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)
        self.config_file.chmod(0o600)

    def classpath(self) -> str:
        """The Java class path of the Kafka jars (broker and its tools)."""
        return str(self.lib_dir / "*")

    def _format_storage_if_needed(self, java: str, cluster_id: str) -> None:
        wanted = "secured" if self.secure else "plaintext"
        if (self.data_dir / "meta.properties").exists():
            formatted = (
                self.mode_file.read_text().strip() if self.mode_file.exists() else "plaintext"
            )
            if formatted == "plaintext" and self.secure:
                raise LocalKafkaError(
                    f"the local broker's data ({self.data_dir}) was made by an open (PLAINTEXT) "
                    "broker and has no admin credential; to secure it start afresh "
                    "(ungebus local wipe: its topics are deleted), or keep it open with "
                    "UNGEBUS_KAFKA_SECURITY=plaintext"
                )
            return
        scram = self.security.format_arguments() if self.secure else []
        result = subprocess.run(
            [
                java,
                "-cp",
                self.classpath(),
                f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.yaml'}",
                f"-Dkafka.logs.dir={self.log_dir}",
                "kafka.tools.StorageTool",
                "format",
                # "=" form: a random id may start with "-", which argparse takes for an option.
                f"--cluster-id={cluster_id}",
                "--config",
                str(self.config_file),
                "--ignore-formatted",
                *scram,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting Kafka storage in {self.data_dir} failed:\n"
                + tail(result.stdout + result.stderr)
            )
        self.mode_file.write_text(wanted + "\n")

    def spawn(self, java: str) -> subprocess.Popen[bytes]:
        """Start its process, detached (its own session), and record its pid."""
        command = [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            self.classpath(),
            "kafka.Kafka",
            str(self.config_file),
        ]
        with self.console_file.open("ab") as console:
            process = subprocess.Popen(
                command,
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.home,
            )
        self.pid_file.write_text(str(process.pid))
        return process

    def await_answer(self, process: subprocess.Popen[bytes]) -> None:
        """Wait until the started ``process`` answers metadata; else kill it and say why."""

        def exited_while_starting() -> None:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise LocalKafkaError(
                    f"Kafka exited with code {process.returncode} while starting; "
                    f"the end of its log ({self.log_file}):\n{self._log_tail()}"
                )

        ready = within(
            lambda: answers_metadata(self.client_config()),
            self.start_timeout_s,
            every_s=0.25,
            check=exited_while_starting,
        )
        if ready:
            return
        process.kill()
        process.wait(10)
        self.pid_file.unlink(missing_ok=True)
        raise LocalKafkaError(
            f"Kafka did not accept connections on {self.bootstrap_servers} within "
            f"{self.start_timeout_s:.0f} s; the end of its log ({self.log_file}):\n"
            f"{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        parts = []
        for path in (self.console_file, self.log_file):
            if path.exists():
                parts.append(tail(path.read_text(errors="replace")))
        return "\n".join(parts) or "(no log written)"


_PLAINTEXT_LISTENERS = """\
# OPEN: no authentication, no ACLs (UNGEBUS_KAFKA_SECURITY=plaintext).
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
"""


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
