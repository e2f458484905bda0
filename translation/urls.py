"""Routes under /api/v1/translation/ (API.md §2-§5)."""

from django.urls import path

from translation.api.writes import FlushView, SessionBatchView, TaskBatchView

app_name = "translation"

urlpatterns = [
    path("sessions/batch", SessionBatchView.as_view(), name="sessions-batch"),
    path("tasks/batch", TaskBatchView.as_view(), name="tasks-batch"),
    path("flush", FlushView.as_view(), name="flush"),
]
