"""``bus.waiting``: the one wait-until loop (no clocks asserted: deadlines of 0 or none)."""

from __future__ import annotations

import itertools
import math

import pytest

from bus.waiting import WaitTimeout, wait_until, within


def test_returns_the_first_truthy_value_without_sleeping_when_it_holds() -> None:
    slept: list[float] = []
    assert wait_until(lambda: "yes", 0, "an answer", sleep=slept.append) == "yes"
    assert slept == []


def test_asks_again_until_it_holds() -> None:
    answers = iter([None, 0, "", "third"])
    assert wait_until(lambda: next(answers), math.inf, "an answer", sleep=lambda _s: None) == (
        "third"
    )


def test_a_timeout_names_what_was_awaited() -> None:
    with pytest.raises(WaitTimeout, match="waiting for the broker"):
        wait_until(lambda: False, 0, "the broker")
    assert not within(lambda: False, 0)


def test_check_gives_up_early() -> None:
    rounds = itertools.count()

    def dead() -> None:
        if next(rounds) == 2:
            raise RuntimeError("the component died")

    with pytest.raises(RuntimeError, match="died"):
        within(lambda: False, math.inf, check=dead, sleep=lambda _s: None)
