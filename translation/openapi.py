"""OpenAPI descriptions of the answers (documentation only): sessions and tasks.

The answers themselves are built by translation.representation (plain dicts, for speed). Their
components are derived from the records' validation schemas (translation.validation), so a field
added there is documented here: a record's shape is written once. What the answers add to the
stored fields (the service's timestamps, derived figures) is listed here.

    @extend_schema(responses={200: SessionDetailOut, 404: NOT_FOUND})
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from core.openapi import ErrorOut, serializer_from_schema
from translation.representation import SERVICE_TIMESTAMPS, SUMMARY_FIELDS
from translation.validation import SessionIn, TaskIn


def _timestamps() -> dict[str, serializers.Field]:
    return {name: serializers.DateTimeField() for name in SERVICE_TIMESTAMPS}


SessionSummaryOut = serializer_from_schema(
    "SessionSummaryOut",
    SessionIn,
    fields=[name for name in SUMMARY_FIELDS if name in SessionIn.model_fields],
    extra={
        "pending_tasks": serializers.IntegerField(),
        "progress": serializers.FloatField(help_text="Percent of tasks completed, one decimal."),
        **_timestamps(),
    },
)
SessionDetailOut = serializer_from_schema(
    "SessionDetailOut",
    SessionIn,
    fields=[name for name in SessionIn.model_fields if name not in SUMMARY_FIELDS],
    extra={
        "estimated_completion": serializers.DateTimeField(
            allow_null=True, help_text="Projected from the finishing rate so far; null when not projectable."
        )
    },
    base=SessionSummaryOut,
)
TaskOut = serializer_from_schema("TaskOut", TaskIn, extra=_timestamps())


NOT_FOUND = OpenApiResponse(
    ErrorOut,
    description='Unknown session: {"detail": "Session not found", "error_code": "NOT_FOUND", "session_id": ...}.',
)
UNAVAILABLE = OpenApiResponse(ErrorOut, description="The database or the buffer store is unreachable.")
