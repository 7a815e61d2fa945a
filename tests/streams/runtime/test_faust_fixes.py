"""The faust and aiokafka fixes refuse to run on versions they were not written for."""

from __future__ import annotations

import pytest

from streams.runtime import faust_fixes
from streams.runtime.faust_fixes import WRITTEN_FOR, UnsupportedVersion, check_versions


def test_the_installed_versions_are_those_the_fixes_were_written_for() -> None:
    check_versions()  # also ran when the module was imported


@pytest.mark.parametrize("upgraded", sorted(WRITTEN_FOR))
def test_another_version_fails_naming_the_versions_the_fixes_were_written_for(
    upgraded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = faust_fixes.installed_version
    monkeypatch.setattr(
        faust_fixes,
        "installed_version",
        lambda name: "99.0.0" if name == upgraded else real(name),
    )

    with pytest.raises(UnsupportedVersion) as refused:
        check_versions()

    message = str(refused.value)
    assert f"{upgraded} 99.0.0 is installed" in message
    assert "written for faust-streaming 0.15.3, aiokafka 0.14.0" in message
    assert "streams/runtime/faust_fixes.py" in message
