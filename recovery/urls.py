"""Routes under /api/v1/translation/recovery/ (docs/api.md §4)."""

from django.urls import path

from recovery.api import IncompleteSessionsView, RecoveryStatusView, RestoreView

app_name = "recovery"

urlpatterns: list = [
    path("incomplete-sessions", IncompleteSessionsView.as_view(), name="incomplete-sessions"),
    path("restore/<str:session_id>", RestoreView.as_view(), name="restore"),
    path("status", RecoveryStatusView.as_view(), name="status"),
]
