"""``bus.services``: every service says it is ready one way, never by a line in its log."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bus import services
from deploy.local.settings import StackSettings
from deploy.local.stack import component_specs


def test_every_service_is_ready_by_its_health_endpoint_or_its_ready_files() -> None:
    for service in services.SERVICES:
        assert (service.http is None) == bool(service.ready_processes), service.name


def test_the_dev_stack_waits_for_the_ready_files_of_this_run(tmp_path: Path) -> None:
    specs = {spec.name: spec for spec in component_specs(StackSettings(var_dir=tmp_path))}
    assert sorted(specs) == sorted(s.component for s in services.SERVICES)
    router = specs[services.ROUTER.component]
    assert not router.ready()
    later = time.time() + 60  # a file's time may lag time.time() by a clock tick
    for process in ("router", "tracker"):
        assert not router.ready()  # until both are
        path = services.ready_file(tmp_path, process)
        path.parent.mkdir(exist_ok=True)
        path.write_text("1\n")
        os.utime(path, (later, later))
    assert router.ready()
