"""Session management endpoints (docs/api.md §5): delete, status change, retention cleanup.

    DELETE /api/v1/translation/sessions/<id>           scope admin
    PATCH  /api/v1/translation/sessions/<id>/status    scope write
    POST   /api/v1/translation/sessions/cleanup        scope admin

``SessionDeleteMixin`` carries the DELETE handler; the session detail view of the read path
(translation.api.queries.SessionDetailView) serves GET and DELETE on the same URL.
"""

from __future__ import annotations

from typing import Annotated, Literal

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from pydantic import BaseModel, ConfigDict, Field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import validated
from core.openapi import ErrorOut
from translation import openapi
from translation.representation import session_detail
from translation.services.lifecycle import session_delete, session_status_update, sessions_cleanup

# A retention longer than a century is a typo (days vs seconds), not a policy.
MAX_RETENTION_DAYS = 36_500


class SessionStatusIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    status: Literal["pending", "processing", "completed", "failed", "cancelled"]


RetentionDays = Annotated[int, Field(ge=0, le=MAX_RETENTION_DAYS)]


class CleanupIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    completed_days: RetentionDays | None = Field(
        default=None, description="Default: RETENTION_COMPLETED_DAYS (90)."
    )
    failed_days: RetentionDays | None = Field(
        default=None,
        description="Applies to failed and cancelled sessions. Default: RETENTION_FAILED_DAYS (30).",
    )
    dry_run: bool = False


DeletedOut = inline_serializer(
    "SessionDeleted",
    {
        "status": serializers.CharField(help_text='Always "deleted".'),
        "session_id": serializers.CharField(),
        "deleted_tasks": serializers.IntegerField(help_text="Tasks removed, stored or buffered."),
    },
)
CleanupOut = inline_serializer(
    "SessionCleanup",
    {
        "status": serializers.CharField(help_text='Always "completed".'),
        "deleted_sessions": serializers.IntegerField(),
        "deleted_tasks": serializers.IntegerField(),
        "dry_run": serializers.BooleanField(),
    },
)
_BAD_BODY = {
    400: OpenApiResponse(ErrorOut, description="Body is not JSON or not an object (MALFORMED_JSON)."),
    422: OpenApiResponse(ErrorOut, description="A field is missing, unknown or invalid (VALIDATION_ERROR)."),
}


class SessionDeleteMixin:
    @extend_schema(
        tags=["translation: management"],
        summary="Delete a session with its tasks",
        description="Deletes the session, its stored tasks (in bounded chunks) and every buffered write of "
        "the session and its tasks, so no later flush brings it back. deleted_tasks counts the tasks "
        "removed, stored or buffered. Scope admin.",
        responses={
            200: DeletedOut,
            404: openapi.NOT_FOUND,
            503: OpenApiResponse(ErrorOut, description="Buffer store down, or a flush did not yield."),
        },
    )
    def delete(self, request: Request, session_id: str) -> Response:
        deleted_tasks = session_delete(session_id=session_id)
        return Response({"status": "deleted", "session_id": session_id, "deleted_tasks": deleted_tasks})


@extend_schema(
    tags=["translation: management"],
    summary="Change a session's status",
    description="Writes the session again with the new status, as a whole-record write through the buffer "
    "(last accepted write wins, also for a session not flushed yet), and answers the updated detail. "
    "Any status may follow any other.",
    request=SessionStatusIn,
    responses={200: openapi.SessionDetailOut, **_BAD_BODY, 404: openapi.NOT_FOUND, 503: openapi.UNAVAILABLE},
    examples=[OpenApiExample("cancel", request_only=True, value={"status": "cancelled"})],
)
class SessionStatusView(APIView):
    required_scope = "write"

    def patch(self, request: Request, session_id: str) -> Response:
        body = validated(SessionStatusIn, request.data if request.stream is not None else None)
        row = session_status_update(session_id=session_id, status=body.status)
        return Response(session_detail(row))


@extend_schema(
    tags=["translation: management"],
    summary="Delete expired sessions",
    description="Deletes completed sessions not updated for completed_days, and failed or cancelled sessions "
    "not updated for failed_days, with their tasks, in bounded chunks. dry_run counts without deleting. "
    "Sessions with a write still buffered are current and kept. The body may be empty (defaults). "
    "The same cleanup runs daily (Celery beat) and as `manage.py cleanup_sessions`.",
    request=CleanupIn,
    responses={200: CleanupOut, **_BAD_BODY, 503: openapi.UNAVAILABLE},
    examples=[
        OpenApiExample(
            "dry run", request_only=True, value={"completed_days": 90, "failed_days": 30, "dry_run": True}
        )
    ],
)
class SessionCleanupView(APIView):
    required_scope = "admin"

    def post(self, request: Request) -> Response:
        body = validated(CleanupIn, request.data if request.stream is not None else {})
        result = sessions_cleanup(
            completed_days=body.completed_days, failed_days=body.failed_days, dry_run=body.dry_run
        )
        return Response(result.as_dict())
