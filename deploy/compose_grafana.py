"""The compose file's Grafana: the operators' dashboard beside Prometheus and Jaeger.

Its data sources and dashboard provider are in ``deploy/grafana/provisioning``, the dashboard
in ``deploy/grafana/dashboards`` (both written by hand, checked by
``tests/deploy/test_dashboards.py``).
"""

from __future__ import annotations

from typing import Any

GRAFANA_IMAGE = "grafana/grafana:12.2.0"
GRAFANA_DIR = "grafana"  # in deploy/: provisioning/ and dashboards/
DASHBOARDS_PATH = "/var/lib/grafana/dashboards"
GRAFANA_PORT = 3000


def grafana_service() -> dict[str, Any]:
    """Grafana on 127.0.0.1:3000 with the ungebus dashboard, read-only like the Prometheus and
    Jaeger UIs beside it: anonymous viewers, no log-in (so no default admin password to
    leave), dashboards from git (``deploy/grafana``), nothing reported home."""
    return {
        "image": GRAFANA_IMAGE,
        "environment": {
            "GF_AUTH_ANONYMOUS_ENABLED": "true",
            "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
            "GF_AUTH_DISABLE_LOGIN_FORM": "true",
            "GF_AUTH_BASIC_ENABLED": "false",
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
            "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": f"{DASHBOARDS_PATH}/ungebus.json",
        },
        "volumes": [
            f"./{GRAFANA_DIR}/provisioning:/etc/grafana/provisioning:ro",
            f"./{GRAFANA_DIR}/dashboards:{DASHBOARDS_PATH}:ro",
        ],
        "ports": [f"127.0.0.1:{GRAFANA_PORT}:{GRAFANA_PORT}"],
        "depends_on": {"prometheus": {"condition": "service_started"}},
        "restart": "unless-stopped",
    }
