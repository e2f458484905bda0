"""Query endpoints (docs/api.md §3). Filtering, paging and read-your-writes: translation.selectors.

GET /api/v1/translation/sessions                      scope read
GET /api/v1/translation/sessions/<id>                 scope read (DELETE: admin, lifecycle)
GET /api/v1/translation/sessions/<id>/tasks           scope read
GET /api/v1/translation/tasks/<id>                    scope read
GET /api/v1/translation/tasks                         scope read
GET /api/v1/translation/stats                         scope read
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.openapi import ErrorOut
from core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from translation import openapi
from translation.api.lifecycle import SessionDeleteMixin
from translation.models import SessionStatus, TaskStatus
from translation.selectors import (
    SORT_FIELDS,
    session_detail_get,
    session_tasks_page,
    sessions_page,
    stats_get,
    task_detail_get,
    tasks_page,
)

TAGS = ["translation: queries"]
INVALID_QUERY = OpenApiResponse(
    ErrorOut,
    description="A query parameter is malformed: bad date, page < 1, page_size outside 1-100, unknown "
    "sort field or status (INVALID_QUERY); `errors` lists each one.",
)
TASK_NOT_FOUND = OpenApiResponse(
    ErrorOut,
    description='Unknown task: {"detail": "Task not found", "error_code": "NOT_FOUND", "task_id": ...}.',
)
PAGING = [
    OpenApiParameter("page", int, description="From 1. A page past the end has no items.", default=1),
    OpenApiParameter("page_size", int, description=f"1-{MAX_PAGE_SIZE}.", default=DEFAULT_PAGE_SIZE),
]
DATES = [
    OpenApiParameter(
        "from_date",
        OpenApiTypes.STR,
        description="created_at on or after: an ISO 8601 date or date-time (UTC when no offset).",
    ),
    OpenApiParameter(
        "to_date",
        OpenApiTypes.STR,
        description="created_at on or before: an ISO 8601 date-time, or a date (the whole day).",
    ),
]


def _page_of(name: str, item: serializers.Serializer, **extra: serializers.Field) -> serializers.Serializer:
    return inline_serializer(
        name,
        {
            **extra,
            "total": serializers.IntegerField(),
            "page": serializers.IntegerField(),
            "page_size": serializers.IntegerField(),
            "total_pages": serializers.IntegerField(),
            "items": item,
        },
    )


SessionPageOut = _page_of("SessionPage", openapi.SessionSummaryOut(many=True))
SessionTaskPageOut = _page_of(
    "SessionTaskPage", openapi.TaskOut(many=True), session_id=serializers.CharField()
)
TaskPageOut = _page_of("TaskPage", openapi.TaskOut(many=True))
StatsOut = inline_serializer(
    "Stats",
    {
        "sessions": inline_serializer(
            "SessionCounts",
            {"total": serializers.IntegerField()}
            | {status: serializers.IntegerField() for status in SessionStatus.values},
        ),
        "tasks": inline_serializer(
            "TaskCounts",
            {"total": serializers.IntegerField()}
            | {status: serializers.IntegerField() for status in TaskStatus.values},
        ),
        "performance": inline_serializer(
            "Performance",
            {
                "average_session_time": serializers.FloatField(
                    help_text="Seconds from created_at to updated_at of completed sessions."
                ),
                "average_task_time": serializers.FloatField(
                    help_text="Mean duration_ms of completed tasks, in seconds."
                ),
                "success_rate": serializers.FloatField(
                    help_text="Completed tasks as a percentage of completed + failed."
                ),
            },
        ),
        "storage": inline_serializer(
            "StorageFigures",
            {
                "database_size_mb": serializers.FloatField(),
                "sessions_table_rows": serializers.IntegerField(),
                "tasks_table_rows": serializers.IntegerField(),
            },
        ),
    },
)


@extend_schema(
    tags=TAGS,
    summary="List sessions",
    description="Session summaries from the database (a write shows here once flushed). Ordered by sort_by "
    "and order, ties by session_id.",
    parameters=[
        OpenApiParameter("status", OpenApiTypes.STR, enum=SessionStatus.values),
        OpenApiParameter("llm_provider", OpenApiTypes.STR),
        *DATES,
        OpenApiParameter("sort_by", OpenApiTypes.STR, enum=list(SORT_FIELDS), default="created_at"),
        OpenApiParameter("order", OpenApiTypes.STR, enum=["asc", "desc"], default="desc"),
        *PAGING,
    ],
    responses={200: SessionPageOut, 400: INVALID_QUERY, 503: openapi.UNAVAILABLE},
)
class SessionListView(APIView):
    required_scope = "read"

    @extend_schema(operation_id="v1_translation_sessions_list")
    def get(self, request: Request) -> Response:
        return Response(sessions_page(query=request.query_params))


class SessionDetailView(SessionDeleteMixin, APIView):
    required_scope = {"GET": "read", "DELETE": "admin"}

    @extend_schema(
        tags=TAGS,
        summary="A session",
        description="Every field plus pending_tasks, progress and estimated_completion, as last accepted: "
        "writes not yet flushed are included (read-your-writes).",
        responses={200: openapi.SessionDetailOut, 404: openapi.NOT_FOUND, 503: openapi.UNAVAILABLE},
    )
    def get(self, request: Request, session_id: str) -> Response:
        return Response(session_detail_get(session_id=session_id))


@extend_schema(
    tags=TAGS,
    summary="A session's tasks",
    description="Stored tasks of the session, ordered by row_index, then task_id.",
    parameters=[
        OpenApiParameter("status", OpenApiTypes.STR, enum=TaskStatus.values),
        OpenApiParameter("sheet_name", OpenApiTypes.STR),
        *PAGING,
    ],
    responses={
        200: SessionTaskPageOut,
        400: INVALID_QUERY,
        404: openapi.NOT_FOUND,
        503: openapi.UNAVAILABLE,
    },
)
class SessionTaskListView(APIView):
    required_scope = "read"

    def get(self, request: Request, session_id: str) -> Response:
        return Response(session_tasks_page(session_id=session_id, query=request.query_params))


@extend_schema(
    tags=TAGS,
    summary="A task",
    description="Every task field as last accepted: writes not yet flushed are included (read-your-writes).",
    responses={200: openapi.TaskOut, 404: TASK_NOT_FOUND, 503: openapi.UNAVAILABLE},
)
class TaskDetailView(APIView):
    required_scope = "read"

    def get(self, request: Request, task_id: str) -> Response:
        return Response(task_detail_get(task_id=task_id))


@extend_schema(
    tags=TAGS,
    summary="List tasks",
    description="Stored tasks ordered by task_id. Filter by session_id for a session's tasks in row order "
    "(GET /sessions/{id}/tasks).",
    parameters=[
        OpenApiParameter("session_id", OpenApiTypes.STR),
        OpenApiParameter("status", OpenApiTypes.STR, enum=TaskStatus.values),
        OpenApiParameter("batch_id", OpenApiTypes.STR),
        *DATES,
        *PAGING,
    ],
    responses={200: TaskPageOut, 400: INVALID_QUERY, 503: openapi.UNAVAILABLE},
)
class TaskListView(APIView):
    required_scope = "read"

    @extend_schema(operation_id="v1_translation_tasks_list")
    def get(self, request: Request) -> Response:
        return Response(tasks_page(query=request.query_params))


@extend_schema(
    tags=TAGS,
    summary="Statistics",
    description="Counts per status, averages and storage figures of stored data. Computed with one "
    "aggregation per table and cached for STATS_CACHE_SECONDS (default 5 s).",
    responses={200: StatsOut, 503: openapi.UNAVAILABLE},
    examples=[
        OpenApiExample(
            "stats",
            response_only=True,
            value={
                "sessions": {
                    "total": 3,
                    "pending": 0,
                    "processing": 1,
                    "completed": 2,
                    "failed": 0,
                    "cancelled": 0,
                },
                "tasks": {"total": 640, "pending": 20, "processing": 10, "completed": 600, "failed": 10},
                "performance": {
                    "average_session_time": 812.4,
                    "average_task_time": 1.92,
                    "success_rate": 98.4,
                },
                "storage": {"database_size_mb": 3.52, "sessions_table_rows": 3, "tasks_table_rows": 640},
            },
        )
    ],
)
class StatsView(APIView):
    required_scope = "read"

    def get(self, request: Request) -> Response:
        return Response(stats_get())
