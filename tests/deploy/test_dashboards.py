"""The operators' dashboard and alerts (deploy/grafana, deploy/prometheus-rules.yaml) load, say
what the issue asks, and read only metrics the code exports.

Prometheus's own validator checks them: ``promtool check rules`` and ``check config`` (the
rules as the compose Prometheus loads them), ``promtool test rules`` (each alert fires on the
series that should wake someone, and not on its look-alikes), and ``promtool check rules`` on
the dashboard's queries as recording rules (so each panel's PromQL parses); Grafana's own
schema types (grafana-foundation-sdk) read the dashboard and must keep every field. The
promtool tests are marked ``promtool`` (Debian's ``prometheus`` package: ``make
prometheus-deps``); ``make test`` runs them, ``make unit`` does not. No Docker is needed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bus.settings import PROJECT_ROOT
from deploy.compose import DEPLOY_DIR, PROMETHEUS_FILE, RULES_FILE, compose, prometheus_config
from deploy.compose_grafana import DASHBOARDS_PATH, GRAFANA_DIR
from tests.support.exported_metrics import exported_names, instruments, query_metric_names

GRAFANA = DEPLOY_DIR / GRAFANA_DIR
DASHBOARD = json.loads((GRAFANA / "dashboards" / "ungebus.json").read_text())
RULES: dict[str, Any] = yaml.safe_load((DEPLOY_DIR / RULES_FILE).read_text())
RULES_TESTS = DEPLOY_DIR / "prometheus-rules.test.yaml"
README = (PROJECT_ROOT / "README.md").read_text()
PROMETHEUS_OWN = {"up"}  # made by Prometheus for each scrape target, not by the code
ALERTS = {  # what the issue asks an alert for
    "UngebusDeadLettersGrowing",
    "UngebusConsumerLagGrowing",
    "UngebusComponentDown",
    "UngebusTasksOverdue",
}
PANEL_TYPES = {"timeseries", "stat", "bargauge", "gauge", "table"}
GRID_WIDTH = 24


def alerts() -> list[dict[str, Any]]:
    return [rule for group in RULES["groups"] for rule in group["rules"] if "alert" in rule]


def panels() -> list[dict[str, Any]]:
    return list(DASHBOARD["panels"])


def panel_queries() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def provisioned(kind: str) -> list[dict[str, Any]]:
    return [
        yaml.safe_load(path.read_text())
        for path in sorted((GRAFANA / "provisioning" / kind).glob("*.yaml"))
    ]


def promtool(*args: str, cwd: Path = DEPLOY_DIR) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make prometheus-deps` (Debian's prometheus package)"
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


# -- every metric they name exists ---------------------------------------------------------------
EXPORTED = exported_names(instruments())


def test_the_name_translation_is_the_exporters() -> None:
    """The names a component's /metrics shows (README: Tracing and metrics)."""
    assert {
        "ungebus_events_accepted_total",
        "ungebus_routing_latency_milliseconds_bucket",
        "ungebus_consumer_lag",
        "ungebus_tasks_overdue",
    } <= EXPORTED
    assert query_metric_names(
        'sum by (le, ungebus_unit) (rate(a_total{job="x", b="c"}[$__rate_interval])) > 1e3'
        " or on (job) up offset 10m unless histogram_quantile(0.9, b_bucket)"
    ) == {"a_total", "up", "b_bucket"}


@pytest.mark.parametrize(
    "where, expr",
    [(f"alert {rule['alert']}", rule["expr"]) for rule in alerts()]
    + [(f"panel {p['id']} {t['refId']}", t["expr"]) for p in panels() for t in p["targets"]],
)
def test_every_metric_a_query_reads_is_exported_by_the_code(where: str, expr: str) -> None:
    names = query_metric_names(expr)
    assert names, f"{where}: reads no metric: {expr}"
    missing = names - EXPORTED - PROMETHEUS_OWN
    assert not missing, f"{where} reads {sorted(missing)}, which no component exports"


def test_every_query_reads_the_components_own_scrape_job() -> None:
    """The collector's job has the same metrics again (from OTLP): counted once, by job."""
    jobs = {job["job_name"] for job in prometheus_config()["scrape_configs"]}
    for expr in [rule["expr"] for rule in alerts()] + panel_queries():
        named = set(re.findall(r'\bjob="([^"]*)"', expr))
        assert named == {"ungebus"} <= jobs, expr
        selectors = len(re.findall(r"[\w:]+\{", expr)) + len(re.findall(r"\bup\b(?!\{)", expr))
        assert expr.count('job="ungebus"') == selectors, f"a selector without the job: {expr}"


# -- the alerting rules --------------------------------------------------------------------------
def test_the_alerts_are_the_ones_the_issue_asks_for_each_with_its_runbook() -> None:
    assert {rule["alert"] for rule in alerts()} == ALERTS
    runbook = README[README.index("### When an alert fires") :]
    anchors = {_anchor(heading) for heading in re.findall(r"^#{3,4} (.+)$", runbook, re.M)}
    for rule in alerts():
        link = rule["annotations"]["runbook"]
        assert link == f"README.md#{rule['alert'].lower()}", link
        assert link.split("#")[1] in anchors, f"no README heading for {link}"
        assert rule["labels"]["severity"] in {"warning", "critical"}


def _anchor(heading: str) -> str:
    """GitHub's anchor of a README heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_promtool_tests_that_see_it_fire_and_stay_quiet() -> None:
    cases = [case for test in yaml.safe_load(RULES_TESTS.read_text())["tests"]
             for case in test["alert_rule_test"]]  # fmt: skip
    for alert in ALERTS:
        expected = [case["exp_alerts"] for case in cases if case["alertname"] == alert]
        assert any(expected) and not all(expected), f"{alert}: fires and stays quiet?"


@pytest.mark.promtool
def test_promtool_accepts_the_rules_and_the_compose_prometheus_config() -> None:
    for args in (("check", "rules", RULES_FILE), ("check", "config", PROMETHEUS_FILE)):
        checked = promtool(*args)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "4 rules found" in promtool("check", "rules", RULES_FILE).stdout


@pytest.mark.promtool
def test_each_alert_fires_as_its_unit_tests_say() -> None:
    tested = promtool("test", "rules", RULES_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@pytest.mark.promtool
def test_the_unit_tests_catch_an_alert_that_misses_a_first_dead_letter(tmp_path: Path) -> None:
    """Without its new-series branch the dead-letter alert never sees a process's first dead
    letter (its counter appears at 1): the unit tests must say so."""
    rules = yaml.safe_load((DEPLOY_DIR / RULES_FILE).read_text())
    (dead_letters,) = [r for g in rules["groups"] for r in g["rules"]
                       if r.get("alert") == "UngebusDeadLettersGrowing"]  # fmt: skip
    dead_letters["expr"] = dead_letters["expr"].split("\nor\n")[0]
    (tmp_path / RULES_FILE).write_text(yaml.safe_dump(rules))
    shutil.copy(RULES_TESTS, tmp_path)
    tested = promtool("test", "rules", RULES_TESTS.name, cwd=tmp_path)
    assert tested.returncode != 0, tested.stdout
    assert 'ungebus_component="router"' in tested.stdout + tested.stderr


# -- the dashboard -------------------------------------------------------------------------------
def test_the_dashboard_shows_what_the_issue_asks() -> None:
    """Each figure of the issue is a panel query on its metric, split by its labels."""
    accepted, rejected = "ungebus_events_accepted_total", "ungebus_events_rejected_total"
    per_partner_and_kind = ("ungebus_partner", "ungebus_event_kind")
    wanted = {
        "accepted per partner and kind": (accepted, *per_partner_and_kind),
        "rejected per partner and kind": (rejected, *per_partner_and_kind),
        "routed per unit": ('ungebus_outcome="routed"', "ungebus_unit"),
        "held and purged": ('ungebus_outcome=~"held|purged"',),
        "dead letters per reason": ("ungebus_deadletters_total", "ungebus_error_type"),
        "consumer lag per group": ("ungebus_consumer_lag", "messaging_consumer_group_name"),
        "publish -> task latency": ("histogram_quantile", "latency_milliseconds_bucket"),
        "overdue tasks per municipality": ("ungebus_tasks_overdue", "ungebus_kommunekode"),
        "components up": ('up{job="ungebus"}',),
    }  # fmt: skip
    for figure, parts in wanted.items():
        assert any(all(part in expr for part in parts) for expr in panel_queries()), figure


def test_the_dashboard_is_a_grafana_dashboard_on_the_provisioned_prometheus() -> None:
    assert DASHBOARD["uid"] and DASHBOARD["title"] and isinstance(DASHBOARD["schemaVersion"], int)
    sources = {s["uid"]: s for doc in provisioned("datasources") for s in doc["datasources"]}
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids), ids
    cells: set[tuple[int, int]] = set()
    for panel in panels():
        where = f"panel {panel['id']} {panel.get('title')!r}"
        assert panel["type"] in PANEL_TYPES and panel["title"], where
        source = sources.get(panel["datasource"]["uid"])
        assert source is not None and source["type"] == panel["datasource"]["type"] == "prometheus"
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in "hwxy") and grid["x"] + grid["w"] <= GRID_WIDTH
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}  # fmt: skip
        assert not mine & cells, f"{where} overlaps another panel"
        cells |= mine
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), where
        for target in panel["targets"]:
            assert target["expr"].strip(), where
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], where


def grafana_reads(dashboard: dict[str, Any]) -> dict[str, Any]:
    """The dashboard as Grafana's own schema types read it (grafana-foundation-sdk, generated
    from Grafana's schemas; panel options and queries by their plugin's types)."""
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    plugins.register_default_plugins()
    read: dict[str, Any] = json.loads(json.dumps(Dashboard.from_json(dashboard), cls=JSONEncoder))
    return read


def not_kept(written: Any, read: Any, path: str = "") -> list[str]:
    """Where ``read`` lost or changed what was ``written``: a key the schema does not know."""
    if isinstance(written, dict) and isinstance(read, dict):
        lost = [f"{path}/{k}" for k in written if k not in read]
        return lost + [p for k, v in written.items() if k in read
                       for p in not_kept(v, read[k], f"{path}/{k}")]  # fmt: skip
    if isinstance(written, list) and isinstance(read, list) and len(written) == len(read):
        return [p for i, (w, r) in enumerate(zip(written, read, strict=True))
                for p in not_kept(w, r, f"{path}[{i}]")]  # fmt: skip
    return [] if written == read else [path]


def test_grafanas_schema_knows_every_field_the_dashboard_sets() -> None:
    assert not_kept(DASHBOARD, grafana_reads(DASHBOARD)) == []
    misspelt = json.loads(json.dumps(DASHBOARD))
    misspelt["panels"][1]["targets"][0]["exp"] = misspelt["panels"][1]["targets"][0].pop("expr")
    misspelt["panels"][0]["options"]["colourMode"] = "background"
    assert not_kept(misspelt, grafana_reads(misspelt)) == [
        "/panels[0]/options/colourMode",
        "/panels[1]/targets[0]/exp",
    ]


@pytest.mark.promtool
def test_every_panel_query_is_promql_that_prometheus_parses(tmp_path: Path) -> None:
    """Each query as a recording rule (Grafana's $__rate_interval as a duration), checked by
    promtool."""
    rules = [
        {"record": f"dashboard:panel_{panel['id']}_{target['refId']}",
         "expr": target["expr"].replace("$__rate_interval", "1m")}
        for panel in panels() for target in panel["targets"]
    ]  # fmt: skip
    assert not any("$" in rule["expr"] for rule in rules), "a Grafana variable promtool cannot read"
    (tmp_path / "panels.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]})
    )
    checked = promtool("check", "rules", "panels.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(rules)} rules found" in checked.stdout


# -- provisioned in compose ----------------------------------------------------------------------
def test_compose_provisions_grafana_with_the_dashboard_and_prometheus_with_the_rules() -> None:
    services = compose()["services"]
    grafana = services["grafana"]
    assert f"./{GRAFANA_DIR}/dashboards:{DASHBOARDS_PATH}:ro" in grafana["volumes"]
    assert f"./{GRAFANA_DIR}/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    (providers,) = [doc["providers"] for doc in provisioned("dashboards")]
    assert [p["options"]["path"] for p in providers] == [DASHBOARDS_PATH]
    urls = {s["url"] for doc in provisioned("datasources") for s in doc["datasources"]}
    for name in ("prometheus", "jaeger"):
        assert any(f"//{name}:" in url for url in urls) and name in services
    assert all(port.startswith("127.0.0.1:") for port in grafana["ports"])
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    config_dir = Path(services["prometheus"]["command"][0].split("=", 1)[1]).parent
    assert f"./{RULES_FILE}:{config_dir / RULES_FILE}:ro" in services["prometheus"]["volumes"]
    assert prometheus_config()["rule_files"] == [RULES_FILE]
