"""Batch write endpoints and the flush endpoint (docs/api.md §2). Validation is translation.validation;
buffering and flushing are translation.services.ingest."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import MalformedJSON
from core.openapi import ErrorOut
from translation.services.ingest import buffer_flush, session_batch_upsert, task_batch_upsert
from translation.validation import SessionBatchIn, TaskBatchIn, validate_batch

AcceptedOut = inline_serializer(
    "BatchAccepted",
    {
        "status": serializers.ChoiceField(choices=["accepted"]),
        "count": serializers.IntegerField(),
        "timestamp": serializers.DateTimeField(),
    },
)
FlushedOut = inline_serializer(
    "Flushed",
    {
        "status": serializers.ChoiceField(choices=["flushed"]),
        "sessions_written": serializers.IntegerField(),
        "tasks_written": serializers.IntegerField(),
        "duration_ms": serializers.IntegerField(),
    },
)
_WRITE_ERRORS = {
    400: OpenApiResponse(ErrorOut, description="Body is empty, not JSON or not an object (MALFORMED_JSON)."),
    413: OpenApiResponse(ErrorOut, description="Body larger than the limit (PAYLOAD_TOO_LARGE)."),
    422: OpenApiResponse(
        ErrorOut,
        description="Validation failed (VALIDATION_ERROR, BATCH_TOO_LARGE, SESSION_NOT_FOUND); every invalid "
        "record is listed by index and field, and nothing was accepted.",
    ),
    503: OpenApiResponse(
        ErrorOut, description="Buffer full (BUFFER_FULL) or buffer store down (STORAGE_UNAVAILABLE)."
    ),
}


def _json_body(request: Request) -> Any:
    if request.stream is None:
        raise MalformedJSON("Request body is empty; a JSON object is expected.")
    return request.data


def _accepted(request: Request, collection: str, count: int) -> Response:
    request._request.log_extra = {"collection": collection, "count": count}
    now = dt.datetime.now(dt.UTC)
    return Response({"status": "accepted", "count": count, "timestamp": now}, status=status.HTTP_202_ACCEPTED)


class _BatchView(APIView):
    required_scope = "write"
    kind: Literal["sessions", "tasks"]
    collection: str

    def store(self, records: list[dict[str, Any]]) -> int:
        raise NotImplementedError

    def post(self, request: Request) -> Response:
        records = validate_batch(_json_body(request), kind=self.kind)
        return _accepted(request, self.collection, self.store(records))


@extend_schema(
    tags=["translation: writes"],
    summary="Upsert a batch of sessions",
    description="Validates 1-1000 whole session records (all or nothing), buffers them durably and answers 202. "
    "They reach the database within the flush interval. Last accepted write wins per session_id.",
    request=SessionBatchIn,
    responses={202: AcceptedOut, **_WRITE_ERRORS},
    examples=[
        OpenApiExample(
            "one session",
            request_only=True,
            value={
                "sessions": [
                    {
                        "session_id": "3f0c5a52-0f59-4a4e-9d8e-1b7f0d1f6a11",
                        "filename": "game_text.xlsx",
                        "file_path": "/uploads/game_text.xlsx",
                        "status": "processing",
                        "llm_provider": "openai",
                        "game_info": {"game_name": "Quest", "source_language": "en", "target_language": "de"},
                        "total_tasks": 640,
                    }
                ]
            },
        )
    ],
)
class SessionBatchView(_BatchView):
    kind = "sessions"
    collection = "translation_sessions"

    def store(self, records: list[dict[str, Any]]) -> int:
        return session_batch_upsert(records=records)


@extend_schema(
    tags=["translation: writes"],
    summary="Upsert a batch of tasks",
    description="Validates 1-1000 whole task records (all or nothing); every session_id must name a session "
    "already accepted (stored or buffered), else 422 SESSION_NOT_FOUND. Buffers them and answers 202.",
    request=TaskBatchIn,
    responses={202: AcceptedOut, **_WRITE_ERRORS},
)
class TaskBatchView(_BatchView):
    kind = "tasks"
    collection = "translation_tasks"

    def store(self, records: list[dict[str, Any]]) -> int:
        return task_batch_upsert(records=records)


@extend_schema(
    tags=["translation: writes"],
    summary="Flush the write buffer now",
    description="Writes everything buffered to the database (sessions first) before answering; waits up to "
    "10 s. On failure the data stays buffered for the next attempt.",
    request=None,
    responses={
        200: FlushedOut,
        503: OpenApiResponse(ErrorOut, description='FLUSH_FAILED, with "status": "error".'),
    },
)
class FlushView(APIView):
    required_scope = "write"

    def post(self, request: Request) -> Response:
        result = buffer_flush()
        return Response(
            {
                "status": "flushed",
                "sessions_written": result.written["translation_sessions"],
                "tasks_written": result.written["translation_tasks"],
                "duration_ms": result.duration_ms,
            }
        )
