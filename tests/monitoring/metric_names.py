"""Which metric names the service exports, and which ones a PromQL expression refers to.

The monitoring assets (alert rules, Grafana dashboard) may only query metrics that exist; these
two functions let the tests compare them.

    assert referenced_metric_names('sum(rate(x_total{a="b"}[5m])) by (c)') == {"x_total"}
    assert "persistence_flush_total" in exported_metric_names()
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

#: Series the service does not export itself but that the assets rely on: ``up`` is written by
#: Prometheus for every scrape target, ``probe_success`` by the blackbox exporter probing /health.
EXTERNAL_METRICS = frozenset({"up", "probe_success"})

#: ``persistence_buffer_size{type}`` is collected at scrape time from the buffer store (a custom
#: collector, not a module-level metric object), so it is named here.
COLLECTED_AT_SCRAPE = frozenset({"persistence_buffer_size"})

_SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count", ""),
    "info": ("_info",),
}


def _sample_names(family_name: str, family_type: str) -> set[str]:
    """The sample names a scrape shows for one family (``_created`` is left out: multiprocess
    mode does not export it)."""
    return {family_name + suffix for suffix in _SAMPLE_SUFFIXES.get(family_type, ("",))}


def _names_of(metrics: object) -> set[str]:
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names |= _sample_names(family.name, family.type)
    return names


def service_metric_names() -> set[str]:
    """Samples of the service's own metrics (core.metrics)."""
    from core import metrics

    return _names_of(metrics) | COLLECTED_AT_SCRAPE


def django_prometheus_metric_names() -> set[str]:
    """Samples of django-prometheus's request metrics, from its own metric definitions (built into
    a private registry so the process's default registry is left alone)."""
    from django_prometheus.middleware import Metrics

    registry = CollectorRegistry()

    class _PrivateMetrics(Metrics):
        def register_metric(self, metric_cls, name, documentation, labelnames=(), **kwargs):  # type: ignore[no-untyped-def]
            return metric_cls(name, documentation, labelnames=labelnames, registry=registry, **kwargs)

    return _names_of(_PrivateMetrics())


def exported_metric_names() -> set[str]:
    """Every sample name a scrape of the service (plus Prometheus and blackbox) can show."""
    return service_metric_names() | django_prometheus_metric_names() | EXTERNAL_METRICS


_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_GRAFANA_VARIABLE = re.compile(r"\$\{?\w+\}?")
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
        "atan2",
    }
)


def referenced_metric_names(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression (Grafana variables allowed).

    Not a full parser: strings, label matchers, range selectors and grouping clauses are removed,
    then every remaining identifier that is not a keyword, a function call or part of a number or
    duration is a metric name. promtool checks the expressions' syntax separately.
    """
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VARIABLE.sub("1", text)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end() :].lstrip()[:1]
        if before.isdigit() or before == "." or after == "(" or match.group() in _KEYWORDS:
            continue
        names.add(match.group())
    return names
