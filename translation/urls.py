"""Routes under /api/v1/translation/ (API.md §2-§5)."""

from django.urls import path

from translation.api.lifecycle import SessionCleanupView, SessionStatusView
from translation.api.queries import (
    SessionDetailView,
    SessionListView,
    SessionTaskListView,
    StatsView,
    TaskDetailView,
    TaskListView,
)
from translation.api.writes import FlushView, SessionBatchView, TaskBatchView

app_name = "translation"

urlpatterns = [
    path("sessions/batch", SessionBatchView.as_view(), name="sessions-batch"),
    path("tasks/batch", TaskBatchView.as_view(), name="tasks-batch"),
    path("flush", FlushView.as_view(), name="flush"),
    # Before sessions/<id>: "cleanup" would otherwise be taken for a session id.
    path("sessions/cleanup", SessionCleanupView.as_view(), name="sessions-cleanup"),
    path("sessions", SessionListView.as_view(), name="session-list"),
    path("sessions/<str:session_id>/status", SessionStatusView.as_view(), name="session-status"),
    path("sessions/<str:session_id>/tasks", SessionTaskListView.as_view(), name="session-tasks"),
    # GET (read) and DELETE (admin, translation.api.lifecycle) of one session.
    path("sessions/<str:session_id>", SessionDetailView.as_view(), name="session-detail"),
    path("tasks", TaskListView.as_view(), name="task-list"),
    path("tasks/<str:task_id>", TaskDetailView.as_view(), name="task-detail"),
    path("stats", StatsView.as_view(), name="stats"),
]
