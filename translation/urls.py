"""Routes under /api/v1/translation/ (API.md §2-§5)."""

from django.urls import path

from translation.api.lifecycle import SessionCleanupView, SessionDeleteView, SessionStatusView
from translation.api.writes import FlushView, SessionBatchView, TaskBatchView

app_name = "translation"

urlpatterns = [
    path("sessions/batch", SessionBatchView.as_view(), name="sessions-batch"),
    path("tasks/batch", TaskBatchView.as_view(), name="tasks-batch"),
    path("flush", FlushView.as_view(), name="flush"),
    # Before sessions/<id>: "cleanup" would otherwise be taken for a session id.
    path("sessions/cleanup", SessionCleanupView.as_view(), name="sessions-cleanup"),
    path("sessions/<str:session_id>/status", SessionStatusView.as_view(), name="session-status"),
    # The read path's session detail (GET) joins this route: see translation.api.lifecycle.
    path("sessions/<str:session_id>", SessionDeleteView.as_view(), name="session-delete"),
]
