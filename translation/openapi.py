"""OpenAPI descriptions of the answers (documentation only): sessions and tasks.

The answers themselves are built by translation.representation (plain dicts, for speed); these
serializers only tell drf-spectacular their shape.

    @extend_schema(responses={200: SessionDetailOut, 404: NOT_FOUND})
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from core.openapi import ErrorOut
from translation.models import SessionStatus, TaskStatus

_STATUSES = SessionStatus.values
_TASK_STATUSES = TaskStatus.values


class SessionSummaryOut(serializers.Serializer):
    session_id = serializers.CharField()
    filename = serializers.CharField()
    status = serializers.ChoiceField(choices=_STATUSES)
    total_tasks = serializers.IntegerField()
    completed_tasks = serializers.IntegerField()
    failed_tasks = serializers.IntegerField()
    processing_tasks = serializers.IntegerField()
    pending_tasks = serializers.IntegerField()
    progress = serializers.FloatField(help_text="Percent of tasks completed, one decimal.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SessionDetailOut(SessionSummaryOut):
    file_path = serializers.CharField()
    game_info = serializers.DictField(allow_null=True)
    llm_provider = serializers.CharField()
    metadata = serializers.DictField(allow_null=True)
    estimated_completion = serializers.DateTimeField(
        allow_null=True, help_text="Projected from the finishing rate so far; null when not projectable."
    )


class TaskOut(serializers.Serializer):
    task_id = serializers.CharField()
    session_id = serializers.CharField()
    batch_id = serializers.CharField()
    sheet_name = serializers.CharField()
    row_index = serializers.IntegerField()
    column_name = serializers.CharField()
    source_text = serializers.CharField(allow_blank=True)
    target_text = serializers.CharField(allow_null=True)
    context = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=_TASK_STATUSES)
    confidence = serializers.FloatField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    retry_count = serializers.IntegerField()
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


NOT_FOUND = OpenApiResponse(
    ErrorOut,
    description='Unknown session: {"detail": "Session not found", "error_code": "NOT_FOUND", "session_id": ...}.',
)
UNAVAILABLE = OpenApiResponse(ErrorOut, description="The database or the buffer store is unreachable.")
