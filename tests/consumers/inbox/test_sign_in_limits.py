"""Failed sign-ins per account and per client address, in a sliding window (a fake clock)."""

from __future__ import annotations

from consumers.inbox.sign_in_limits import Limit, Refusal, SignInLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limits(clock: Clock, max_keys: int = 100) -> SignInLimits:
    return SignInLimits(Limit(3, 60.0), Limit(5, 60.0), max_keys=max_keys, clock=clock)


def test_an_account_is_refused_after_its_failures_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    sign_ins = limits(clock)
    for second in (0, 10, 20):
        clock.now = 1000.0 + second
        assert sign_ins.check("yu-1", "192.0.2.1") is None
        sign_ins.failed("yu-1", "192.0.2.1")
    assert sign_ins.check("yu-1", "192.0.2.2") == Refusal("account", 40, 3, 60.0)
    assert sign_ins.check("yu-2", "192.0.2.1") is None  # another account, same address
    clock.now = 1059.5
    assert sign_ins.check("yu-1", "192.0.2.1") == Refusal("account", 1, 3, 60.0)
    clock.now = 1060.0  # the first failure is a minute old: one more try
    assert sign_ins.check("yu-1", "192.0.2.1") is None
    sign_ins.failed("yu-1", "192.0.2.1")
    assert sign_ins.check("yu-1", "192.0.2.1") == Refusal("account", 10, 3, 60.0)


def test_an_address_is_refused_after_its_failures_whichever_accounts_it_tried() -> None:
    clock = Clock()
    sign_ins = limits(clock)
    for n in range(5):
        sign_ins.failed(f"guess-{n}", "192.0.2.9")
    assert sign_ins.check("yu-1", "192.0.2.9") == Refusal("address", 60, 5, 60.0)
    assert sign_ins.check("yu-1", "192.0.2.10") is None


def test_a_success_clears_the_accounts_failures_not_the_addresses() -> None:
    clock = Clock()
    sign_ins = limits(clock)
    for _ in range(3):
        sign_ins.failed("yu-1", "192.0.2.1")
    sign_ins.succeeded("yu-1")
    assert sign_ins.check("yu-1", "192.0.2.3") is None
    for _ in range(2):
        sign_ins.failed("yu-3", "192.0.2.1")
    # 3 + 2 failures from that address
    assert sign_ins.check("yu-4", "192.0.2.1") == Refusal("address", 60, 5, 60.0)


def test_memory_is_bounded_by_keys_and_by_failures_per_key() -> None:
    clock = Clock()
    sign_ins = limits(clock, max_keys=10)
    for n in range(50):
        sign_ins.failed(f"guess-{n}", f"192.0.2.{n}")
    accounts = sign_ins._accounts._times
    assert len(accounts) == 10 and "guess-49" in accounts and "guess-0" not in accounts
    for _ in range(100):
        sign_ins.failed("yu-1", "192.0.2.1")
    assert len(sign_ins._accounts._times["yu-1"]) == 3
