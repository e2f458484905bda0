"""Routes under /api/v1/system/ (docs/api.md §6)."""

from django.urls import path

from system.views import ConfigView, MetricsView

app_name = "system"

urlpatterns = [
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("config", ConfigView.as_view(), name="config"),
]
