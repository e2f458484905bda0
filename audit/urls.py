"""Routes under /api/v1/audit (docs/api.md §9)."""

from django.urls import path

from audit.api.views import AuditBatchView, AuditLogExportView, AuditLogListView, AuditStatsView

app_name = "audit"

urlpatterns = [
    path("logs/batch", AuditBatchView.as_view(), name="logs-batch"),
    path("logs/export", AuditLogExportView.as_view(), name="logs-export"),
    path("logs", AuditLogListView.as_view(), name="logs"),
    path("stats", AuditStatsView.as_view(), name="stats"),
]
