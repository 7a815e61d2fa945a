"""Ports for listeners are chosen where no outgoing connection can take them first."""

from __future__ import annotations

from bus.ports import _ephemeral_low, free_port_run, free_ports, port_free


def test_free_ports_are_distinct_free_and_below_the_ephemeral_range() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8
    assert all(port < _ephemeral_low() and port_free(port) for port in ports)


def test_a_run_of_ports_is_free_and_below_the_ephemeral_range() -> None:
    first = free_port_run(7)
    assert first + 6 < _ephemeral_low()
    assert all(port_free(first + i) for i in range(7))
