"""monitoring/prometheus/alerts.yml: it parses, its alerts fire when they should (promtool unit
tests), it covers what operators need, and it queries only metrics the service exports."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.monitoring.conftest import ALERTS, ALERTS_TEST, TROUBLESHOOTING
from tests.monitoring.metric_names import exported_metric_names, referenced_metric_names

DURATION = re.compile(r"^\d+[smhd]$")


def _rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_promtool_accepts_the_rules(promtool):
    result = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_the_alerts_pass(promtool):
    result = subprocess.run([promtool, "test", "rules", str(ALERTS_TEST)], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_is_a_complete_alert():
    document = yaml.safe_load(ALERTS.read_text())

    assert document["groups"], "no rule groups"
    for group in document["groups"]:
        assert group["name"] and group["rules"], group
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"Persistence[A-Z]\w+", rule["alert"]), rule["alert"]
            assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule["alert"]
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
            if "for" in rule:
                assert DURATION.match(rule["for"]), rule["alert"]


def test_alert_names_are_unique():
    names = [rule["alert"] for rule in _rules()]

    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("concern", "metric"),
    [
        ("buffer near capacity", "persistence_buffer_size"),
        ("flush failures", "persistence_flush_errors_total"),
        ("data loss", "persistence_data_loss_total"),
        ("dead letters increasing", "persistence_dead_letters_total"),
        ("instance down", "up"),
        ("health probe failing", "probe_success"),
        ("error rate", "django_http_responses_total_by_status_view_method_total"),
        ("p95 latency", "django_http_requests_latency_seconds_by_view_method_bucket"),
    ],
)
def test_an_alert_watches(concern, metric):
    watched = set().union(*(referenced_metric_names(rule["expr"]) for rule in _rules()))

    assert metric in watched, f"no alert for {concern}"


def test_rules_query_only_exported_metrics():
    exported = exported_metric_names()

    unknown = {
        rule["alert"]: sorted(referenced_metric_names(rule["expr"]) - exported)
        for rule in _rules()
        if referenced_metric_names(rule["expr"]) - exported
    }

    assert unknown == {}


def test_every_runbook_link_names_a_section_of_the_troubleshooting_guide():
    headings = {
        _anchor(line.lstrip("#")) for line in TROUBLESHOOTING.read_text().splitlines() if line.startswith("#")
    }

    for rule in _rules():
        runbook = rule["annotations"]["runbook"]
        path, _, anchor = runbook.partition("#")
        assert path == "docs/troubleshooting.md", rule["alert"]
        assert anchor in headings, f"{rule['alert']}: no section #{anchor}"
