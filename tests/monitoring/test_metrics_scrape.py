"""The metrics the monitoring assets query are the ones a real scrape of the service shows."""

from __future__ import annotations

import json

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import session_record
from tests.monitoring.conftest import ALERTS, DASHBOARD
from tests.monitoring.metric_names import EXTERNAL_METRICS, _sample_names, referenced_metric_names


def _queried() -> set[str]:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    panels = [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]
    exprs = [r["expr"] for r in rules] + [t["expr"] for p in panels for t in p["targets"]]
    return set().union(*(referenced_metric_names(e) for e in exprs)) - EXTERNAL_METRICS


@pytest.mark.django_db
def test_every_queried_metric_is_in_a_scrape(api_client, write_buffer):
    # given: a write, so the per-view request metrics have been touched
    api_client.post("/api/v1/translation/sessions/batch", {"sessions": [session_record()]}, format="json")

    # when
    response = api_client.get("/api/v1/system/metrics")

    # then
    if response.status_code == 404:
        pytest.skip("GET /api/v1/system/metrics is not deployed yet")
    assert response.status_code == 200
    scraped: set[str] = set()
    for family in text_string_to_metric_families(response.content.decode()):
        # Families without samples yet (no exception so far) still count: their HELP/TYPE lines are there.
        scraped |= _sample_names(family.name, family.type)
        scraped |= {sample.name for sample in family.samples}
    assert _queried() - scraped == set()
