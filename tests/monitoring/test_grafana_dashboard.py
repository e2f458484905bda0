"""monitoring/grafana/persistence-dashboard.json: a well-formed dashboard whose queries parse and
use only metrics the service exports."""

from __future__ import annotations

import json
import re
import subprocess

import yaml

from tests.monitoring.conftest import DASHBOARD
from tests.monitoring.metric_names import exported_metric_names, referenced_metric_names

# Values for Grafana's variables so an expression is plain PromQL that promtool can parse.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$job": "persistence",
    "$capacity": "200000",
}


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels() -> list[dict]:
    return [panel for panel in _dashboard()["panels"] if panel["type"] != "row"]


def _exprs() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in _panels() for target in panel["targets"]]


def _plain(expr: str) -> str:
    for variable in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(variable, GRAFANA_VARIABLES[variable])
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def test_dashboard_has_identity_and_a_prometheus_datasource_variable():
    dashboard = _dashboard()

    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_panel_ids_are_unique():
    ids = [panel["id"] for panel in _dashboard()["panels"]]

    assert len(ids) == len(set(ids))


def test_every_panel_queries_the_datasource_variable():
    for panel in _panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_panels_fit_the_24_column_grid():
    for panel in _dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]


def test_queries_use_only_exported_metrics():
    exported = exported_metric_names()

    unknown = {
        title: sorted(referenced_metric_names(expr) - exported)
        for title, expr in _exprs()
        if referenced_metric_names(expr) - exported
    }

    assert unknown == {}


def test_the_dashboard_shows_the_contract_metrics():
    shown = set().union(*(referenced_metric_names(expr) for _, expr in _exprs()))

    assert {
        "persistence_buffer_size",
        "persistence_flush_total",
        "persistence_flush_duration_seconds_bucket",
        "persistence_flushed_items_total",
        "persistence_flush_errors_total",
        "persistence_storage_operations_total",
        "persistence_storage_errors_total",
        "persistence_data_loss_total",
        "django_http_requests_latency_seconds_by_view_method_bucket",
    } <= shown


def test_queries_parse_as_promql(promtool, tmp_path):
    # promtool parses expressions in rule files, so each query becomes a recording rule.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": _plain(expr)}
                    for n, (_, expr) in enumerate(_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump(rules))

    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"{len(_exprs())} rules found", result.stdout)
