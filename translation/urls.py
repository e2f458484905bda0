"""Routes under /api/v1/translation/ (docs/api.md §2-§5).

Ids are free text (translation.validation): a session may be called "batch" or "cleanup", a task
"batch". The fixed routes of those names answer their own methods and hand every other method to
the item route, so such ids stay reachable (GET and DELETE of a session, GET of a task).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
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

View = Callable[..., HttpResponse]


def _or_item(route: View, item: View, **item_kwargs: str) -> View:
    """``route`` for the methods its class implements, ``item(**item_kwargs)`` for the others.

    ``functools.wraps`` keeps ``route``'s ``cls`` and ``initkwargs``, so the OpenAPI document still
    sees the fixed route's view.
    """
    own = {method for method in route.cls.http_method_names if hasattr(route.cls, method)}  # type: ignore[attr-defined]

    @functools.wraps(route)
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method and request.method.lower() in own:
            return route(request, *args, **kwargs)
        return item(request, **item_kwargs)

    return view


session_detail = SessionDetailView.as_view()

urlpatterns = [
    path(
        "sessions/batch",
        _or_item(SessionBatchView.as_view(), session_detail, session_id="batch"),
        name="sessions-batch",
    ),
    path(
        "tasks/batch",
        _or_item(TaskBatchView.as_view(), TaskDetailView.as_view(), task_id="batch"),
        name="tasks-batch",
    ),
    path("flush", FlushView.as_view(), name="flush"),
    # Before sessions/<id>: "cleanup" would otherwise be taken for a session id.
    path(
        "sessions/cleanup",
        _or_item(SessionCleanupView.as_view(), session_detail, session_id="cleanup"),
        name="sessions-cleanup",
    ),
    path("sessions", SessionListView.as_view(), name="session-list"),
    path("sessions/<str:session_id>/status", SessionStatusView.as_view(), name="session-status"),
    path("sessions/<str:session_id>/tasks", SessionTaskListView.as_view(), name="session-tasks"),
    # GET (read) and DELETE (admin, translation.api.lifecycle) of one session.
    path("sessions/<str:session_id>", session_detail, name="session-detail"),
    path("tasks", TaskListView.as_view(), name="task-list"),
    path("tasks/<str:task_id>", TaskDetailView.as_view(), name="task-detail"),
    path("stats", StatsView.as_view(), name="stats"),
]
