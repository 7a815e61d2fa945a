"""How often a password may be tried: failed sign-ins per account and per client address.

Without a limit, ``/login`` answers as fast as argon2 verifies, so a password can be guessed
at that speed. Each account and each client address may fail ``failures`` times within a
sliding window of ``window_s``; then sign-ins for that account, or from that address, are
refused (HTTP 429 with Retry-After) until the oldest failure leaves the window, before the
password is looked at. A success clears the account's failures, never the address's (one
valid account must not reset the count of an address that guesses others'). Unknown staff ids
count like known ones, so the answer never tells which accounts exist.

Kept in this process's memory: right for one inbox process (which is how the inbox runs:
one per municipality); several processes behind one address would each keep their own count,
and a restart forgets. Memory is bounded: at most ``failures`` times per key and at most
``max_keys`` keys per kind (the least recently failed go first).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Limit:
    failures: int  # failed sign-ins allowed within the window
    window_s: float


@dataclass(frozen=True)
class Refusal:
    """Too many failed sign-ins: for this account or from this address."""

    by: Literal["account", "address"]
    retry_after_s: int  # whole seconds until a sign-in may be tried again
    failures: int
    window_s: float


class FailureLog:
    """Recent failure times per key, oldest first; not thread-safe (``SignInLimits`` locks)."""

    def __init__(self, limit: Limit, max_keys: int) -> None:
        self.limit = limit
        self._max_keys = max_keys
        self._times: OrderedDict[str, deque[float]] = OrderedDict()

    def wait_s(self, key: str, now: float) -> float:
        """Seconds until ``key`` may fail once more; 0 if it may now."""
        times = self._times.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.limit.window_s:
            times.popleft()
        if not times:
            del self._times[key]
            return 0.0
        if len(times) < self.limit.failures:
            return 0.0
        return times[0] + self.limit.window_s - now

    def failed(self, key: str, now: float) -> None:
        times = self._times.setdefault(key, deque(maxlen=self.limit.failures))
        times.append(now)
        self._times.move_to_end(key)
        while len(self._times) > self._max_keys:
            self._times.popitem(last=False)

    def forget(self, key: str) -> None:
        self._times.pop(key, None)


class SignInLimits:
    """Failed sign-ins per account and per client address (one lock: sign-ins are rare)."""

    def __init__(
        self,
        per_account: Limit,
        per_address: Limit,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._accounts = FailureLog(per_account, max_keys)
        self._addresses = FailureLog(per_address, max_keys)
        self._clock = clock
        self._lock = threading.Lock()

    def check(self, staff_id: str, address: str) -> Refusal | None:
        """A refusal if this account, or this address, has used up its failures."""
        checks: tuple[tuple[Literal["account", "address"], FailureLog, str], ...] = (
            ("account", self._accounts, staff_id),
            ("address", self._addresses, address),
        )
        with self._lock:
            now = self._clock()
            for by, log, key in checks:
                wait = log.wait_s(key, now)
                if wait > 0:
                    limit = log.limit
                    return Refusal(by, max(1, math.ceil(wait)), limit.failures, limit.window_s)
        return None

    def failed(self, staff_id: str, address: str) -> None:
        with self._lock:
            now = self._clock()
            self._accounts.failed(staff_id, now)
            self._addresses.failed(address, now)

    def succeeded(self, staff_id: str) -> None:
        with self._lock:
            self._accounts.forget(staff_id)
