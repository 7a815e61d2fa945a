"""``ungebus acl apply|check`` against a real broker with KRaft's StandardAuthorizer.

This module starts its own small broker: a PLAINTEXT listener whose anonymous clients are the
super user (``super.users=User:ANONYMOUS``), so the ACLs can be written, read and deleted for
real without credentials. (Whether the broker then enforces them is the secured broker's
ACL matrix test.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from confluent_kafka.admin import AdminClient

from bus.acls.cluster import ClusterAcls, binding_filter, to_binding
from bus.acls.matrix import Acl, Operation, Pattern, ResourceType, matrix
from bus.cli import cli
from bus.demo_partners import demo_partners
from bus.settings import Settings
from bus.topics import Topics
from bus.waiting import wait_until
from deploy.local.broker import LocalKafka
from tests.support.kafka_login import login_fields, own_secured_broker

pytestmark = pytest.mark.integration

MATRIX = matrix(Topics(), [p.name for p in demo_partners()])


@pytest.fixture(scope="module")
def authorizing_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A secured broker of its own (StandardAuthorizer, admin the super user), so that the
    ACLs these tests apply and break never reach the session broker's other tests."""
    with own_secured_broker(tmp_path_factory.mktemp("kafka-acl")) as broker:
        yield broker


def admin_config(broker: LocalKafka) -> dict[str, Any]:
    """A raw client configuration logged in to ``broker`` as its admin."""
    fields = login_fields(broker)
    return Settings(kafka_bootstrap_servers=broker.bootstrap_servers, **fields).kafka_config()


def acl(broker: LocalKafka, tmp_path: Path, *args: str) -> Result:
    login = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, **broker.client_env("admin")}
    env = {**login, "UNGEBUS_VAR_DIR": str(tmp_path),
           "UNGEBUS_TOPIC_PREFIX": "", "UNGEBUS_PARTNERS_FILE": None}  # fmt: skip
    return CliRunner(env=env).invoke(cli, ["acl", *args])


def test_apply_creates_the_matrix_and_check_then_passes(
    authorizing_broker: LocalKafka, tmp_path: Path
) -> None:
    before = acl(authorizing_broker, tmp_path, "check")
    assert before.exit_code == 1
    assert f"{len(MATRIX)} missing, 0 unexpected" in before.output

    applied = acl(authorizing_broker, tmp_path, "apply")
    assert applied.exit_code == 0, applied.output
    assert f"{len(MATRIX)} ACLs created, 0 deleted" in applied.output
    assert set(ClusterAcls(admin_config(authorizing_broker)).read()) == set(MATRIX)

    checked = acl(authorizing_broker, tmp_path, "check")
    assert checked.exit_code == 0, checked.output
    again = acl(authorizing_broker, tmp_path, "apply")  # idempotent
    assert again.exit_code == 0 and "0 ACLs created, 0 deleted" in again.output


def test_check_names_the_difference_and_apply_repairs_only_ours(
    authorizing_broker: LocalKafka, tmp_path: Path
) -> None:
    cluster = ClusterAcls(admin_config(authorizing_broker))
    cluster.apply(MATRIX)
    granted_too_much = Acl("inbox-161", ResourceType.TOPIC, "tasks.", Pattern.PREFIXED,
                           Operation.READ)  # fmt: skip
    someone_elses = Acl("alice", ResourceType.TOPIC, "alice.", Pattern.PREFIXED, Operation.ALL)
    lost = next(a for a in MATRIX if a.principal == "inbox-165" and a.operation is Operation.WRITE)
    # Another admin's hand: one grant too many, one taken away, one that is not ungebus's.
    admin = AdminClient(admin_config(authorizing_broker))
    for future in admin.create_acls(
        [to_binding(granted_too_much), to_binding(someone_elses)]
    ).values():
        future.result()
    for future in admin.delete_acls([binding_filter(lost)]).values():
        assert len(future.result()) == 1
    wait_until(lambda: len(cluster.compare(MATRIX).unexpected) == 1, 15, "the drift to show")

    checked = acl(authorizing_broker, tmp_path, "check")
    assert checked.exit_code == 1
    assert "1 missing, 1 unexpected" in checked.output
    lines = checked.output.splitlines()
    assert any(line.startswith("missing") and "User:inbox-165" in line and lost.name in line
               for line in lines)  # fmt: skip
    assert any(line.startswith("unexpected") and "User:inbox-161" in line
               and "PREFIXED 'tasks.'" in line for line in lines)  # fmt: skip
    assert "alice" not in checked.output

    repaired = acl(authorizing_broker, tmp_path, "apply")
    assert repaired.exit_code == 0 and "1 ACLs created, 1 deleted" in repaired.output
    assert acl(authorizing_broker, tmp_path, "check").exit_code == 0
    assert someone_elses in set(cluster.read())  # not ours to delete
