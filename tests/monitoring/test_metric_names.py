"""The helpers that compare the monitoring assets with the service's metrics."""

from __future__ import annotations

from tests.monitoring.metric_names import exported_metric_names, referenced_metric_names


def test_exported_names_include_the_contract_metrics_as_scraped():
    names = exported_metric_names()

    assert {
        "persistence_buffer_size",
        "persistence_flush_total",
        "persistence_flush_duration_seconds_bucket",
        "persistence_flushed_items_total",
        "persistence_flush_errors_total",
        "persistence_storage_operations_total",
        "persistence_storage_errors_total",
        "persistence_data_loss_total",
    } <= names


def test_exported_names_include_django_prometheus_request_metrics():
    names = exported_metric_names()

    assert {
        "django_http_requests_total_by_view_transport_method_total",
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "django_http_responses_total_by_status_view_method_total",
    } <= names


def test_exported_names_are_sample_names_not_family_names():
    # A query for the bare family name of a counter matches nothing in Prometheus.
    names = exported_metric_names()

    assert "persistence_flush" not in names
    assert "persistence_flush_duration_seconds" not in names


def test_referenced_names_skip_functions_labels_and_grouping():
    expr = (
        "histogram_quantile(0.95, sum by (le, view) (rate("
        'latency_bucket{view!~".*(flush|restore).*", job="persistence"}[5m]))) > 0.5'
    )

    assert referenced_metric_names(expr) == {"latency_bucket"}


def test_referenced_names_find_every_operand_of_binary_operators():
    expr = "sum(a) > 0 and on() sum(increase(b_total[10m] offset 5m)) == 0 or 1e3 > bool c"

    assert referenced_metric_names(expr) == {"a", "b_total", "c"}


def test_referenced_names_ignore_grafana_variables():
    expr = 'max(sum by (instance) (buffer_size{job="$job"})) / $capacity + rate(x_total[$__rate_interval])'

    assert referenced_metric_names(expr) == {"buffer_size", "x_total"}
