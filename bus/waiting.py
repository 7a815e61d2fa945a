"""Waiting until something is true: one polling loop for the dev stack, the broker and tests.

A condition is asked first (no sleep when it already holds), then ``check`` (which may raise to
give up early: Ctrl-C, a component that died), then the deadline; between rounds ``sleep``
(``threading.Event.wait`` wakes at once when the event is set).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar, cast

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The condition did not come true in time; the message says what was awaited."""


def wait_until(
    condition: Callable[[], T],
    timeout_s: float,
    what: str,
    *,
    every_s: float = 0.2,
    check: Callable[[], None] | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """The first truthy value of ``condition()``; :class:`WaitTimeout` naming ``what`` after
    ``timeout_s`` seconds (``math.inf``: no deadline)."""
    found = _first(condition, timeout_s, every_s, check, sleep)
    if found is _NOTHING:
        raise WaitTimeout(f"timed out after {timeout_s:g} s waiting for {what}")
    return cast(T, found)


def within(
    condition: Callable[[], object],
    timeout_s: float,
    *,
    every_s: float = 0.2,
    check: Callable[[], None] | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> bool:
    """Whether ``condition()`` came true within ``timeout_s`` seconds (asked at least once)."""
    return _first(condition, timeout_s, every_s, check, sleep) is not _NOTHING


_NOTHING = object()


def _first(
    condition: Callable[[], object],
    timeout_s: float,
    every_s: float,
    check: Callable[[], None] | None,
    sleep: Callable[[float], object],
) -> object:
    deadline = time.monotonic() + timeout_s if timeout_s != math.inf else math.inf
    while True:
        if value := condition():
            return value
        if check is not None:
            check()
        if time.monotonic() >= deadline:
            return _NOTHING
        sleep(every_s)
