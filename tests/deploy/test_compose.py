"""deploy/: the compose file is the code's (names, topics, settings), and it really loads.

The load check runs the real compose loader (`docker compose config`, Docker Compose built
from source by deploy/compose-check.sh when ~/.cache/ungebus lacks it: minutes cold, seconds warm);
its tests are marked `compose`: `make test` runs them, `make unit` does not.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from bus.cli import cli
from bus.services import SERVICES, TOPICS_TOOL
from bus.settings import Settings
from connectors.settings import ConnectorSettings
from consumers.inbox.settings import InboxSettings
from deploy.compose import COMPOSE_FILE, DEPLOY_DIR, PROMETHEUS_FILE, SETUP, generated_files
from streams.cli import role_login_prefix
from streams.settings import RouterSettings, TrackerSettings

CHECK = DEPLOY_DIR / "compose-check.sh"
BUILD_TIMEOUT_S = 15 * 60  # Docker Compose from source on a cold Go cache: about 5 minutes


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY_DIR / name).read_text())
    return document


COMPOSE = load(COMPOSE_FILE)
COLLECTOR = load("otel-collector.yaml")


def components() -> dict[str, dict[str, Any]]:
    return {s.name: COMPOSE["services"][s.name] for s in SERVICES}


# -- (1) generated from the code ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(generated_files()))
def test_committed_file_is_what_the_code_generates(name: str) -> None:
    committed = (DEPLOY_DIR / name).read_text()
    assert committed == generated_files()[name], (
        f"deploy/{name} is out of date: run `ungebus deploy compose`"
    )


def test_every_service_runs_its_own_command_under_its_telemetry_name() -> None:
    for service in SERVICES:
        spec = COMPOSE["services"][service.name]
        assert spec["command"][: len(service.command) + 1] == ["ungebus", *service.command]
        assert spec["environment"]["OTEL_SERVICE_NAME"] == service.name
        # The command exists: `ungebus <command> --help` answers.
        result = CliRunner().invoke(cli, [*service.command, "--help"])
        assert result.exit_code == 0, result.output


def test_every_ungebus_variable_is_a_real_setting() -> None:
    known = {
        f"UNGEBUS_{field}".upper()
        for settings in (
            Settings,
            ConnectorSettings,
            InboxSettings,
            RouterSettings,
            TrackerSettings,
        )
        for field in settings.model_fields
    }
    # The streams service's tracker process logs in as itself (streams.cli.role_env).
    known |= {
        role_login_prefix("tracker") + field.removeprefix("kafka_").upper()
        for field in Settings.model_fields
        if field.startswith("kafka_")
    }
    for name, spec in [(TOPICS_TOOL, COMPOSE["services"][SETUP]), *components().items()]:
        variables = {v for v in spec["environment"] if v.startswith("UNGEBUS_")}
        assert variables <= known, f"{name}: not settings: {sorted(variables - known)}"


def test_http_ports_are_the_components_own_defaults() -> None:
    defaults = {"UNGEBUS_HTTP_PORT": ConnectorSettings(), "UNGEBUS_INBOX_PORT": InboxSettings()}
    for service in SERVICES:
        if service.http is None:
            continue
        settings = defaults[service.http.port_variable]
        field = service.http.port_variable.removeprefix("UNGEBUS_").lower()
        assert getattr(settings, field) == service.http.port


def test_the_pseudonym_secret_and_the_master_key_are_never_in_the_file() -> None:
    for name, spec in components().items():
        for variable in ("UNGEBUS_PSEUDONYM_SECRET", "UNGEBUS_MASTER_KEY"):
            value = spec["environment"][variable]
            assert value.startswith(f"${{{variable}:?"), name


def test_every_image_is_pinned() -> None:
    for name, spec in COMPOSE["services"].items():
        image = spec["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: {image}"
        assert not image.endswith(":latest"), f"{name}: {image}"


# -- (2) kafka-setup (run for real in test_compose_kafka.py) goes first -------------------------
def test_components_start_after_the_setup_is_done() -> None:
    setup = COMPOSE["services"][SETUP]
    assert setup["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    for name, spec in components().items():
        assert spec["depends_on"][SETUP] == {"condition": "service_completed_successfully"}, name


def test_each_component_gets_its_own_login_and_no_other() -> None:
    """A container holds the CA and its own principal's password file; the streams service's
    tracker process has its own login too. No password is a variable."""
    for service in SERVICES:
        spec = COMPOSE["services"][service.name]
        env = spec["environment"]
        assert env["UNGEBUS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        principal = env["UNGEBUS_KAFKA_SASL_USERNAME"]
        logins = {m["source"] for m in spec["secrets"] if isinstance(m, dict)}
        expected = {f"kafka-login-{principal}"}
        if service.name == "ungebus-router":
            expected.add(f"kafka-login-{env['UNGEBUS_TRACKER_KAFKA_SASL_USERNAME']}")
        assert logins == expected, service.name
        assert not any("PASSWORD" in v and not v.endswith("_FILE") for v in env), service.name
    principals = [COMPOSE["services"][s.name]["environment"]["UNGEBUS_KAFKA_SASL_USERNAME"]
                  for s in SERVICES]  # fmt: skip
    assert len(set(principals)) == len(principals), "one principal per component"
    assert "admin" not in principals


# -- (3) the real compose loader --------------------------------------------------------------
@pytest.fixture(scope="session")
def compose_check() -> Path:
    """deploy/compose-check.sh, with Docker Compose built if ~/.cache/ungebus does not have it."""
    built = subprocess.run(
        [str(CHECK), "--build-only"],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert built.returncode == 0, built.stderr
    assert Path(built.stdout.strip()).is_file()
    return CHECK


def run_check(check: Path, file: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(check), str(file), *options], capture_output=True, text=True, timeout=120
    )


@pytest.mark.compose
def test_docker_compose_loads_the_compose_file(compose_check: Path) -> None:
    loaded = run_check(compose_check, DEPLOY_DIR / COMPOSE_FILE, "--format", "json")
    assert loaded.returncode == 0, loaded.stderr
    services = json.loads(loaded.stdout)["services"]
    assert set(services) == set(COMPOSE["services"])
    for name in components():
        environment = services[name]["environment"]
        secret, key = environment["UNGEBUS_PSEUDONYM_SECRET"], environment["UNGEBUS_MASTER_KEY"]
        assert secret == "compose-check-placeholder-not-a-secret", "interpolated, not literal"
        assert key == "compose-check-placeholder-not-a-key", "interpolated, not literal"


BROKEN = {
    "an unknown key": "services:\n  kafka:\n    imagee: apache/kafka:4.1.0\n",
    "a missing dependency": (
        "services:\n  kafka-setup:\n    image: ungebus:local\n"
        "    depends_on:\n      kafka:\n        condition: service_healthy\n"
    ),
    "a bad depends_on condition": (
        "services:\n  kafka:\n    image: apache/kafka:4.1.0\n  kafka-setup:\n    image: x:1\n"
        "    depends_on:\n      kafka:\n        condition: service_finished\n"
    ),
}


@pytest.mark.compose
@pytest.mark.parametrize("what", sorted(BROKEN))
def test_docker_compose_rejects_a_broken_file(
    compose_check: Path, tmp_path: Path, what: str
) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(BROKEN[what])
    loaded = run_check(compose_check, broken)
    assert loaded.returncode != 0, f"{what} was accepted"
    assert loaded.stderr.strip(), "the loader says why"


# -- (4) the collector ------------------------------------------------------------------------
def pipelines() -> dict[str, dict[str, list[str]]]:
    found: dict[str, dict[str, list[str]]] = COLLECTOR["service"]["pipelines"]
    return found


def test_the_collector_takes_otlp_into_traces_and_metrics() -> None:
    assert set(COLLECTOR["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    for signal in ("traces", "metrics"):
        pipeline = pipelines()[signal]
        assert "otlp" in pipeline["receivers"]
        assert pipeline["processors"][0] == "memory_limiter", "memory_limiter goes first"
        assert {"batch", "attributes/drop-message-keys"} <= set(pipeline["processors"])
    assert "otlp/jaeger" in pipelines()["traces"]["exporters"]
    assert "prometheus" in pipelines()["metrics"]["exporters"]


def test_every_component_a_pipeline_names_is_configured() -> None:
    for pipeline in pipelines().values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline[kind]) <= set(COLLECTOR[kind]), (kind, pipeline[kind])


def test_the_collector_drops_message_keys() -> None:
    actions = COLLECTOR["processors"]["attributes/drop-message-keys"]["actions"]
    pattern = re.compile(actions[0]["pattern"])
    assert actions[0]["action"] == "delete"
    for name in ("messaging.kafka.message.key", "messaging.message.key", "message.key"):
        assert pattern.search(name), name
    for name in ("messaging.message.id", "messaging.kafka.message.offset", "ungebus.event.id"):
        assert not pattern.search(name), name


def test_collector_ports_agree_with_the_services_and_prometheus() -> None:
    endpoint = COMPOSE["services"][SERVICES[0].name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    http = COLLECTOR["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert endpoint.rsplit(":", 1)[1] == http.rsplit(":", 1)[1]
    jaeger = COLLECTOR["exporters"]["otlp/jaeger"]["endpoint"]
    assert jaeger.split(":")[0] in COMPOSE["services"]
    scraped = load(PROMETHEUS_FILE)["scrape_configs"][0]["static_configs"][0]["targets"]
    port = COLLECTOR["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    assert scraped == [f"otel-collector:{port}"]
