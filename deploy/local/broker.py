"""A real single-node Apache Kafka broker (KRaft) on this machine, without Docker.

The broker jars come from Maven Central through ``deploy/local/pom.xml``; the broker runs as a
detached Java process whose pid, data and logs live under one home folder. Everything the
operator can get wrong (no Java, no Maven, a taken port, a broker that will not start) becomes
a :class:`LocalKafkaError` with a message that says what to do.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from bus import services
from bus.ports import HOST, port_free
from bus.settings import PROJECT_ROOT
from bus.waiting import within

if TYPE_CHECKING:
    from deploy.local.settings import LocalKafkaSettings

DEPLOY_DIR = PROJECT_ROOT / "deploy" / "local"
MIN_JAVA = 17


class LocalKafkaError(RuntimeError):
    """Something an operator must fix before the local broker can run; the message says what."""


@dataclass(frozen=True)
class LocalKafka:
    """One local broker: where it lives (``home``) and where it listens."""

    home: Path
    port: int = services.LOCAL_KAFKA_PORT
    controller_port: int = services.LOCAL_KAFKA_CONTROLLER_PORT
    heap: str = "768m"
    start_timeout_s: float = 90.0
    port_setting: str = "UNGEBUS_LOCAL_KAFKA_PORT"
    extra_properties: tuple[tuple[str, str], ...] = ()
    """Server properties appended to the template's (later lines win), e.g. an authorizer."""

    @classmethod
    def from_settings(cls, settings: LocalKafkaSettings) -> LocalKafka:
        return cls(
            home=settings.local_kafka_home,
            port=settings.local_kafka_port,
            controller_port=settings.local_kafka_controller_port,
            heap=settings.local_kafka_heap,
            start_timeout_s=settings.local_kafka_start_timeout_s,
        )

    # -- where things are -------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

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
        if _is_our_broker(pid, self.config_file):
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
        self._write_config()
        self._format_storage_if_needed(java)
        self._start(java)
        echo(f"Kafka {self.kafka_version()} is up at {self.bootstrap_servers} (data: {self.home})")
        return True

    def down(self, echo: Callable[[str], None] = print, timeout_s: float = 60.0) -> bool:
        """Stop the broker cleanly (SIGTERM, controlled shutdown); False when none ran."""
        pid = self.running_pid()
        if pid is None:
            echo("Kafka is not running; nothing to stop.")
            return False
        os.kill(pid, signal.SIGTERM)
        if not within(lambda: not _pid_alive(pid), timeout_s):
            echo(f"Kafka (pid {pid}) did not stop within {timeout_s:.0f} s; killing it.")
            os.kill(pid, signal.SIGKILL)
            within(lambda: not _pid_alive(pid), 10)
        self.pid_file.unlink(missing_ok=True)
        echo(f"Kafka at {self.bootstrap_servers} stopped.")
        return True

    def status(self) -> str:
        pid = self.running_pid()
        if pid is None:
            return f"Kafka is not running (would listen on {self.bootstrap_servers})."
        return (
            f"Kafka {self.kafka_version()} is running at {self.bootstrap_servers} "
            f"(pid {pid}, data {self.data_dir}, log {self.log_file})."
        )

    def wipe(self) -> None:
        """Remove data and logs (the broker must be stopped)."""
        if self.running_pid() is not None:
            raise LocalKafkaError("stop the broker first: ungebus local down")
        shutil.rmtree(self.home / "data", ignore_errors=True)
        shutil.rmtree(self.home / "logs", ignore_errors=True)

    # -- internals --------------------------------------------------------------------------
    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        template = Template((DEPLOY_DIR / "server.properties.template").read_text())
        extra = "".join(f"{key}={value}\n" for key, value in self.extra_properties)
        self.config_file.write_text(
            template.substitute(
                host=HOST,
                port=self.port,
                controller_port=self.controller_port,
                data_dir=self.data_dir,
            )
            + ("\n" + extra if extra else "")
        )

    def _classpath(self) -> str:
        return str(self.lib_dir / "*")

    def _format_storage_if_needed(self, java: str) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        result = subprocess.run(
            [
                java,
                "-cp",
                self._classpath(),
                f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.yaml'}",
                f"-Dkafka.logs.dir={self.log_dir}",
                "kafka.tools.StorageTool",
                "format",
                # "=" form: a random id may start with "-", which argparse takes for an option.
                f"--cluster-id={_cluster_id()}",
                "--config",
                str(self.config_file),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting Kafka storage in {self.data_dir} failed:\n"
                + _tail(result.stdout + result.stderr)
            )

    def _start(self, java: str) -> None:
        command = [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            self._classpath(),
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

        def exited_while_starting() -> None:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise LocalKafkaError(
                    f"Kafka exited with code {process.returncode} while starting; "
                    f"the end of its log ({self.log_file}):\n{self._log_tail()}"
                )

        ready = within(
            lambda: _broker_ready(self.bootstrap_servers),
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
                parts.append(_tail(path.read_text(errors="replace")))
        return "\n".join(parts) or "(no log written)"


def require_java() -> str:
    """The ``java`` executable, if it is version 17 or newer."""
    java = shutil.which("java", path=_java_path())
    if java is None:
        raise LocalKafkaError(
            f"Java {MIN_JAVA}+ is needed to run the local Kafka broker and none was found; "
            "install it (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise LocalKafkaError(
            f"Java {MIN_JAVA}+ is needed to run the local Kafka broker, found {major or '?'} "
            f"at {java}; install openjdk-17-jre-headless or newer, or set JAVA_HOME"
        )
    return java


def fetch_jars(echo: Callable[[str], None] = print) -> Path:
    """Download the broker jars with Maven unless they are already there."""
    lib = DEPLOY_DIR / ".kafka" / "lib"
    if any(lib.glob("kafka_2.13-*.jar")):
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(
            "Maven is needed once to fetch the Kafka broker jars from Maven Central and none "
            "was found; install it (Debian: apt-get install maven)"
        )
    echo("Fetching the Apache Kafka broker jars from Maven Central (once)...")
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(DEPLOY_DIR / "pom.xml"), "package"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not any(lib.glob("kafka_2.13-*.jar")):
        shutil.rmtree(lib, ignore_errors=True)
        raise LocalKafkaError(
            "Maven could not fetch the Kafka broker jars:\n" + _tail(result.stdout + result.stderr)
        )
    return lib


def _java_path() -> str:
    java_home = os.environ.get("JAVA_HOME")
    path = os.environ.get("PATH", "")
    return f"{java_home}/bin{os.pathsep}{path}" if java_home else path


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _broker_ready(bootstrap: str) -> bool:
    """True once the broker answers a metadata request (not merely accepts TCP)."""
    host, port = bootstrap.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            pass
    except OSError:
        return False
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=2)
    except Exception:
        return False
    return bool(metadata.brokers)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _is_our_broker(pid: int, config_file: Path) -> bool:
    """Alive, and running this home's config (a recycled pid belongs to someone else)."""
    if not _pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"kafka.Kafka" in cmdline and str(config_file).encode() in cmdline


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
