"""``ungebus streams`` gives each worker of the pair its own Kafka login when one is set."""

from __future__ import annotations

from streams.cli import role_env

PARENT = {
    "PATH": "/usr/bin",
    "UNGEBUS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "UNGEBUS_KAFKA_SASL_USERNAME": "router",
    "UNGEBUS_KAFKA_SASL_PASSWORD_FILE": "/k/credentials/router.password",
    "UNGEBUS_KAFKA_SASL_PASSWORD": "not-the-trackers",
    "UNGEBUS_TRACKER_KAFKA_SASL_USERNAME": "tracker",
    "UNGEBUS_TRACKER_KAFKA_SASL_PASSWORD_FILE": "/k/credentials/tracker.password",
    "UNGEBUS_TRACKER_CHECK_INTERVAL_S": "5",
}


def test_the_tracker_logs_in_with_its_own_login_and_nothing_of_the_routers() -> None:
    env = role_env("tracker", PARENT)
    assert env is not None
    assert env["UNGEBUS_KAFKA_SASL_USERNAME"] == "tracker"
    assert env["UNGEBUS_KAFKA_SASL_PASSWORD_FILE"] == "/k/credentials/tracker.password"
    assert "UNGEBUS_KAFKA_SASL_PASSWORD" not in env  # it would win over the tracker's file
    assert env["UNGEBUS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"  # the shared rest stays
    assert env["UNGEBUS_TRACKER_CHECK_INTERVAL_S"] == "5"  # a setting, not a login
    assert not any(k.startswith("UNGEBUS_TRACKER_KAFKA_") for k in env)


def test_a_worker_without_a_login_of_its_own_runs_as_the_parent() -> None:
    assert role_env("router", PARENT) is None
