"""Fail points: unarmed they do nothing; armed, the Nth pass is a SIGKILL; a bad spec is named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from bus.failpoints import ENV, FailPointError, parse

PASSES = """
from bus.failpoints import failpoint
for n in range(5):
    print(n, flush=True)
    failpoint("here")
"""


def _run(spec: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, ENV: spec}
    return subprocess.run([sys.executable, "-c", PASSES], env=env, capture_output=True, text=True)


def test_an_armed_point_kills_the_process_on_its_nth_pass() -> None:
    ran = _run("here=3")
    assert ran.returncode == -signal.SIGKILL
    assert ran.stdout.split() == ["0", "1", "2"]


def test_unarmed_or_armed_elsewhere_it_does_nothing() -> None:
    for spec in ("", "elsewhere=1"):
        ran = _run(spec)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.split() == ["0", "1", "2", "3", "4"]


def test_the_spec_is_parsed_and_a_bad_one_named() -> None:
    assert parse(" a=3, b=1 ,") == {"a": 3, "b": 1}
    for bad in ("a", "a=0", "a=x", "=2"):
        with pytest.raises(FailPointError, match="UNGEBUS_FAILPOINTS"):
            parse(bad)
