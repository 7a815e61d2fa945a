"""How the long-running components join their consumer groups (static membership, issue 23)."""

from __future__ import annotations

import socket

import pytest

from bus.settings import Settings


def test_a_component_is_a_static_member_named_after_itself_and_the_host() -> None:
    config = Settings().member_config("inbox.161", "inbox")
    assert config["group.id"] == "inbox.161"
    assert config["group.instance.id"] == f"inbox@{socket.gethostname()}"
    assert config["session.timeout.ms"] == 30_000
    assert config["enable.auto.commit"] is False  # still the bus's consumer settings


@pytest.mark.parametrize(
    ("overrides", "instance"),
    [
        ({"consumer_instance": "inbox-a"}, "router@inbox-a"),
        ({"consumer_static_membership": False}, None),
        ({"consumer_static_membership": False, "consumer_instance": "inbox-a"}, None),
    ],
)
def test_the_instance_name_is_a_setting_and_static_membership_can_be_turned_off(
    overrides: dict[str, object], instance: str | None
) -> None:
    settings = Settings(**overrides)  # type: ignore[arg-type]
    assert settings.group_instance_id("router") == instance
    assert settings.member_config("g", "router").get("group.instance.id") == instance


def test_tools_and_readers_stay_dynamic_members() -> None:
    """Only the components are static: two readers of one group may run side by side."""
    assert "group.instance.id" not in Settings().consumer_config("g")
