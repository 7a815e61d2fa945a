"""``bus.services``: every service says it is ready one way, never by a line in its log."""

from __future__ import annotations

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
    services.ready_file(tmp_path, "router").parent.mkdir()
    services.ready_file(tmp_path, "router").write_text("1\n")
    assert not router.ready()  # the tracker is not ready yet
    services.ready_file(tmp_path, "tracker").write_text("2\n")
    assert router.ready()
