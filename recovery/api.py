"""Recovery endpoints (docs/api.md §4), used by a client at start-up after a crash.

GET  /api/v1/translation/recovery/incomplete-sessions
POST /api/v1/translation/recovery/restore/<session_id>
GET  /api/v1/translation/recovery/status
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recovery import openapi
from recovery.restore import session_restore
from recovery.selectors import incomplete_sessions_list, recovery_status_get
from translation.openapi import NOT_FOUND, UNAVAILABLE
from translation.representation import session_summary


@extend_schema(
    tags=["translation: recovery"],
    summary="Sessions a client should resume",
    description="Every session whose latest accepted status is pending or processing, newest first "
    "(created_at descending, then session_id), including sessions accepted but not yet flushed.",
    responses={200: openapi.IncompleteSessionsOut, 503: UNAVAILABLE},
)
class IncompleteSessionsView(APIView):
    required_scope = "read"

    def get(self, request: Request) -> Response:
        sessions = [session_summary(row) for row in incomplete_sessions_list()]
        return Response({"count": len(sessions), "sessions": sessions})


@extend_schema(
    tags=["translation: recovery"],
    summary="Restore a session: its detail and every pending or processing task",
    description="Includes writes accepted but not yet flushed. Tasks carry every field and come in no "
    "particular order. The answer is streamed, so a session with 100,000+ tasks is served in bounded "
    "memory; tasks_count equals the length of tasks. Read-only, but POST because a restore is an action "
    "the client takes (and may be logged or rate-limited as one).",
    request=None,
    responses={200: openapi.RestoreOut, 404: NOT_FOUND, 503: UNAVAILABLE},
    examples=[
        OpenApiExample(
            "restored",
            response_only=True,
            value={
                "session_id": "s-1",
                "session": {"session_id": "s-1", "status": "processing", "total_tasks": 640},
                "tasks_count": 1,
                "tasks": [{"task_id": "t-1", "session_id": "s-1", "status": "pending"}],
                "restored_at": "2025-09-30T10:15:30Z",
            },
        )
    ],
)
class RestoreView(APIView):
    required_scope = "write"

    def post(self, request: Request, session_id: str) -> StreamingHttpResponse:
        body = session_restore(session_id=session_id)
        return StreamingHttpResponse(body.chunks(), content_type="application/json")


@extend_schema(
    tags=["translation: recovery"],
    summary="Recovery readiness",
    description="Incomplete sessions, records still buffered, the last successful flush, dead letters and "
    "whether the database and the buffer store answer. Always 200; `ready` is false when a backend is down.",
    responses={200: openapi.RecoveryStatusOut},
)
class RecoveryStatusView(APIView):
    required_scope = "read"

    def get(self, request: Request) -> Response:
        return Response(recovery_status_get())
