"""The confluent-kafka fixes refuse versions they were not checked against (the bug they step
around is shown on the three-node cluster: ``tests/faults/test_coordinator_moved.py``)."""

from __future__ import annotations

import pytest

from bus.confluent_fixes import WRITTEN_FOR, UnsupportedVersion, check_versions


def test_the_installed_versions_are_those_the_fix_was_written_for() -> None:
    check_versions()  # also ran when the module was imported


@pytest.mark.parametrize("upgraded", sorted(WRITTEN_FOR))
def test_another_version_is_refused_naming_what_to_check(upgraded: str) -> None:
    with pytest.raises(UnsupportedVersion) as refused:
        check_versions(lambda: {**WRITTEN_FOR, upgraded: "99.0.0"})

    message = str(refused.value)
    assert f"{upgraded} 99.0.0 is installed" in message
    assert "tests/faults/test_coordinator_moved.py" in message
