"""Free local ports for listeners: a test's broker, a demo's components.

Chosen below the kernel's ephemeral range, so that no outgoing connection can take a port
between the moment it is chosen and the moment something listens on it.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

HOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """Ports free right now, distinct, chosen below the kernel's ephemeral range: a port in
    that range can be handed to an outgoing connection (a Kafka client's, say) between being
    chosen here and being listened on (seen: a component's metrics port, taken so)."""
    low, high = _LISTEN_LOW, _ephemeral_low() - 1
    if high - low < 100 * count:  # an unusual range: let the kernel choose, as before
        return _kernel_ports(count)
    chosen: list[int] = []
    for _ in range(50 * count):
        port = _RANDOM.randint(low, high)
        if port not in chosen and port_free(port):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise OSError(f"no {count} free ports found on {HOST} between {low} and {high}")


def free_port_run(count: int, attempts: int = 50) -> int:
    """The first of ``count`` consecutive ports free right now (e.g. per-component metrics),
    below the kernel's ephemeral range (see :func:`free_ports`)."""
    low, high = _LISTEN_LOW, _ephemeral_low() - count
    for _ in range(attempts):
        first = _RANDOM.randint(low, high) if high > low else _kernel_ports(1)[0]
        if first + count - 1 <= 65535 and all(port_free(first + i) for i in range(count)):
            return first
    raise OSError(f"no {count} consecutive free ports found on {HOST}")


_LISTEN_LOW = 20000
_RANDOM = random.SystemRandom()


def _ephemeral_low() -> int:
    """The first port the kernel hands to outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _kernel_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_free(port: int, host: str = HOST) -> bool:
    """Whether a listener could bind ``port`` on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
