"""Java, the broker jars, and the broker's process on this machine: what the local broker
needs before it can start, and how to tell it still runs."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from bus.settings import PROJECT_ROOT
from bus.waiting import within

DEPLOY_DIR = PROJECT_ROOT / "deploy" / "local"
MIN_JAVA = 17


class LocalKafkaError(RuntimeError):
    """Something an operator must fix before the local broker can run; the message says what."""


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
            "Maven could not fetch the Kafka broker jars:\n" + tail(result.stdout + result.stderr)
        )
    return lib


def _java_path() -> str:
    java_home = os.environ.get("JAVA_HOME")
    path = os.environ.get("PATH", "")
    return f"{java_home}/bin{os.pathsep}{path}" if java_home else path


def tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
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


def is_our_broker(pid: int, config_file: Path) -> bool:
    """Alive, and running this home's config (a recycled pid belongs to someone else)."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"kafka.Kafka" in cmdline and str(config_file).encode() in cmdline


def stop_processes(pids: list[int], timeout_s: float) -> bool:
    """SIGTERM to each (SIGCONT first: a paused node cannot stop), SIGKILL to those still
    there after ``timeout_s``; False when one had to be killed."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
    if within(lambda: not any(map(pid_alive, pids)), timeout_s):
        return True
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    within(lambda: not any(map(pid_alive, pids)), 10)
    return False


def paused(pid: int | None) -> bool:
    """Whether the process is stopped (SIGSTOP): state ``T`` in ``/proc/<pid>/stat``."""
    if pid is None:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] == "T"
    except (OSError, IndexError):
        return False


def reap(pid: int) -> None:
    """Collect a killed node that this process started (else it lingers as a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
