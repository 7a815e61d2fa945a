"""deploy/strimzi/: the KafkaUser and KafkaTopic resources are the code's, and Strimzi's own
CRD schemas (vendored, release 1.2.0) accept them.

The schemas are made strict before validating: Kubernetes refuses (``kubectl apply``'s strict
field validation) or silently drops (pruning) a field a structural schema does not name, so
an unknown field is an error here. The CRDs' CEL rules (``x-kubernetes-validations``) are the
API server's and are not checked.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from bus.acls.matrix import ADMIN, Acl, Operation, Pattern, ResourceType, matrix
from bus.cli import cli
from bus.demo_partners import demo_partners
from bus.topics import Topics
from deploy.strimzi import STRIMZI_DIR, TOPICS_FILE, USERS_FILE, all_topics, generated_files

CRDS = STRIMZI_DIR / "crds"
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
PARTNERS = sorted(p.name for p in demo_partners())


def strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever it names the properties and
    does not preserve unknown fields."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_validator(path: Path) -> tuple[str, str, jsonschema.protocols.Validator]:
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["served"] and v["storage"]]
    schema = strict(version["schema"]["openAPIV3Schema"])
    api_version = f"{crd['spec']['group']}/{version['name']}"
    return api_version, crd["spec"]["names"]["kind"], jsonschema.Draft7Validator(schema)


VALIDATORS = {
    kind: (api_version, validator)
    for api_version, kind, validator in (
        crd_validator(CRDS / "043-Crd-kafkatopic.yaml"),
        crd_validator(CRDS / "044-Crd-kafkauser.yaml"),
    )
}


def problems(document: dict[str, Any]) -> list[str]:
    """What Kubernetes with Strimzi's CRDs would refuse in ``document``."""
    kind = document.get("kind")
    if kind not in VALIDATORS:
        return [f"kind {kind!r} is not one of {sorted(VALIDATORS)}"]
    api_version, validator = VALIDATORS[kind]
    found = [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(document)
    ]
    if document.get("apiVersion") != api_version:
        found.append(f"apiVersion {document.get('apiVersion')!r} is not {api_version!r}")
    name = document.get("metadata", {}).get("name", "")
    if not DNS_SUBDOMAIN.fullmatch(name):
        found.append(f"metadata.name {name!r} is not a Kubernetes object name")
    return found


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((STRIMZI_DIR / name).read_text()) if d is not None]


@pytest.mark.parametrize("name", [USERS_FILE, TOPICS_FILE])
def test_committed_file_is_what_the_code_generates(name: str) -> None:
    assert (STRIMZI_DIR / name).read_text() == generated_files()[name], (
        f"deploy/strimzi/{name} is out of date: run `ungebus deploy strimzi`"
    )


@pytest.mark.parametrize("name", [USERS_FILE, TOPICS_FILE])
def test_every_resource_is_valid_for_strimzi(name: str) -> None:
    docs = documents(name)
    assert docs
    assert {d["kind"] for d in docs} == {"KafkaUser" if name == USERS_FILE else "KafkaTopic"}
    for document in docs:
        assert problems(document) == [], document["metadata"]["name"]
    names = [d["metadata"]["name"] for d in docs]
    assert len(names) == len(set(names))


def broken_user() -> list[tuple[str, dict[str, Any]]]:
    user = next(d for d in documents(USERS_FILE) if d["metadata"]["name"] == "inbox-161")
    cases = []

    def case(why: str, change: Any) -> None:
        broken = copy.deepcopy(user)
        change(broken)
        cases.append((why, broken))

    case("unknown operation", lambda d: d["spec"]["authorization"]["acls"][0].update(
        operations=["Frobnicate"]))  # fmt: skip
    case("Kafka's PREFIXED is Strimzi's prefix", lambda d: d["spec"]["authorization"]["acls"][0][
        "resource"].update(patternType="prefixed"))  # fmt: skip
    case("no authorization type", lambda d: d["spec"]["authorization"].pop("type"))
    case("misspelt field", lambda d: d["spec"].update(authentification={"type": "tls"}))
    case("no authentication type", lambda d: d["spec"]["authentication"].pop("type"))
    case("SCRAM-SHA-256 is not offered", lambda d: d["spec"]["authentication"].update(
        type="scram-sha-256"))  # fmt: skip
    case("a name Kubernetes refuses", lambda d: d["metadata"].update(name="Inbox_161"))
    case("the old API version", lambda d: d.update(apiVersion="kafka.strimzi.io/v1beta2"))
    return cases


@pytest.mark.parametrize(("why", "document"), broken_user(), ids=lambda v: str(v)[:40])
def test_the_validation_catches_a_broken_user(why: str, document: dict[str, Any]) -> None:
    assert problems(document), why


def test_the_validation_catches_a_broken_topic() -> None:
    topic = documents(TOPICS_FILE)[0]
    assert problems(topic) == []
    for change in (
        {"partitions": 0},
        {"replicas": "three"},
        {"partitons": 3},
    ):
        broken = copy.deepcopy(topic)
        broken["spec"].update(change)
        assert problems(broken), change


def test_the_users_hold_exactly_the_matrix() -> None:
    """Read back from the YAML, the users' ACLs are the generated matrix, nothing more."""
    kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP,
             "cluster": ResourceType.CLUSTER}  # fmt: skip
    patterns = {"literal": Pattern.LITERAL, "prefix": Pattern.PREFIXED}
    found = set()
    users = documents(USERS_FILE)
    for user in users:
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        for rule in user["spec"].get("authorization", {}).get("acls", []):
            assert rule["type"] == "allow" and rule["host"] == "*"
            resource = rule["resource"]
            for op in rule["operations"]:
                found.add(Acl(
                    user["metadata"]["name"],
                    kinds[resource["type"]],
                    resource.get("name", "kafka-cluster"),
                    patterns[resource.get("patternType", "literal")],
                    Operation(re.sub(r"(?<!^)([A-Z])", r"_\1", op).upper()),
                ))  # fmt: skip
    assert found == set(matrix(Topics(), PARTNERS))
    admin = next(u for u in users if u["metadata"]["name"] == ADMIN)
    assert "authorization" not in admin["spec"]  # the super user: superUsers in the Kafka CR


def test_the_topics_are_every_topic_with_its_settings() -> None:
    by_name = {d["spec"]["topicName"]: d["spec"] for d in documents(TOPICS_FILE)}
    expected = all_topics("", PARTNERS)
    assert set(by_name) == {s.name for s in expected}
    for spec in expected:
        assert by_name[spec.name]["partitions"] == spec.partitions
        assert by_name[spec.name].get("config", {}) == spec.config
        assert by_name[spec.name]["replicas"] == 3


def test_deploy_strimzi_writes_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    stale = runner.invoke(cli, ["deploy", "strimzi", "--check", "--dir", str(tmp_path)])
    assert stale.exit_code != 0 and "out of date" in stale.output
    wrote = runner.invoke(cli, ["deploy", "strimzi", "--dir", str(tmp_path), "--replicas", "1",
                                "--topic-prefix", "t1-", "--cluster", "bus"])  # fmt: skip
    assert wrote.exit_code == 0, wrote.output
    topics = list(yaml.safe_load_all((tmp_path / TOPICS_FILE).read_text()))
    assert all(t["spec"]["topicName"].startswith("t1-") and t["spec"]["replicas"] == 1
               for t in topics)  # fmt: skip
    assert all(problems(d) == [] for d in topics)
    assert runner.invoke(cli, ["deploy", "strimzi", "--check", "--dir", str(tmp_path)]).exit_code
    assert runner.invoke(cli, ["deploy", "strimzi", "--check"]).exit_code == 0
