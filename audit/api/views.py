"""Audit endpoints (docs/api.md §9). Thin: validate, call one service or selector, answer.

POST /api/v1/audit/logs/batch     write   202 through the write buffer
GET  /api/v1/audit/logs           admin   filters, page/page_size or cursor
GET  /api/v1/audit/logs/export    admin   streamed NDJSON or CSV
GET  /api/v1/audit/stats          admin
"""

from __future__ import annotations

import datetime as dt

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import selectors, services
from audit.validation import MAX_BATCH, AuditBatchIn, validate_audit_batch
from core.errors import InvalidQuery, MalformedJSON
from core.openapi import ErrorOut
from core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

TAGS = ["audit"]
ACTOR_TYPES = ["user", "api_key", "service", "system"]


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorOut, description=description)


class AuditEventOut(serializers.Serializer):
    event_id = serializers.CharField()
    timestamp = serializers.DateTimeField()
    actor_id = serializers.CharField()
    actor_type = serializers.ChoiceField(choices=ACTOR_TYPES)
    action = serializers.CharField()
    resource_type = serializers.CharField(allow_null=True)
    resource_id = serializers.CharField(allow_null=True)
    outcome = serializers.ChoiceField(choices=["success", "failure"])
    message = serializers.CharField(allow_blank=True)
    ip = serializers.CharField(allow_null=True)
    user_agent = serializers.CharField(allow_null=True)
    request_id = serializers.CharField(allow_null=True)
    details = serializers.DictField()


AuditPageOut = inline_serializer(
    "AuditLogPage",
    {
        "total": serializers.IntegerField(),
        "page": serializers.IntegerField(allow_null=True, help_text="null when the page came from `cursor`."),
        "page_size": serializers.IntegerField(),
        "total_pages": serializers.IntegerField(),
        "items": AuditEventOut(many=True),
        "next_cursor": serializers.CharField(
            allow_null=True,
            help_text="Pass as `cursor` (same filters and order) for the next page; null on the last.",
        ),
    },
)
AuditStatsOut = inline_serializer(
    "AuditStats",
    {
        "total": serializers.IntegerField(),
        "by_action": serializers.DictField(child=serializers.IntegerField(), help_text="Top 20 actions."),
        "by_outcome": serializers.DictField(child=serializers.IntegerField()),
        "by_actor": serializers.DictField(child=serializers.IntegerField(), help_text="Top 20 actor_id."),
        "per_day": inline_serializer(
            "AuditDayCount", {"date": serializers.DateField(), "count": serializers.IntegerField()}, many=True
        ),
    },
)
AcceptedOut = inline_serializer(
    "AuditBatchAccepted",
    {
        "status": serializers.ChoiceField(choices=["accepted"]),
        "count": serializers.IntegerField(),
        "timestamp": serializers.DateTimeField(),
    },
)

FILTERS = [
    OpenApiParameter("actor_id", OpenApiTypes.STR, description="Exact."),
    OpenApiParameter("actor_type", OpenApiTypes.STR, enum=ACTOR_TYPES),
    OpenApiParameter(
        "action",
        OpenApiTypes.STR,
        description="Exact (`session.delete`), or a prefix ending in `.*` (`session.*`).",
    ),
    OpenApiParameter("resource_type", OpenApiTypes.STR, description="Exact."),
    OpenApiParameter("resource_id", OpenApiTypes.STR, description="Exact."),
    OpenApiParameter("outcome", OpenApiTypes.STR, enum=["success", "failure"]),
    OpenApiParameter(
        "from",
        OpenApiTypes.STR,
        description="timestamp on or after: an ISO 8601 date or date-time (UTC if no offset).",
    ),
    OpenApiParameter(
        "to",
        OpenApiTypes.STR,
        description="timestamp on or before: an ISO 8601 date-time, or a date (the whole day).",
    ),
    OpenApiParameter(
        "q",
        OpenApiTypes.STR,
        description="Full text over message: every whitespace-separated term must occur (case-insensitive; "
        "Chinese matched by characters, e.g. 翻译 finds 删除翻译会话).",
    ),
]
INVALID_QUERY = _error(
    "A query parameter is malformed, or the cursor is altered or for other filters (INVALID_QUERY)."
)
UNAVAILABLE = _error("The search backend is unreachable (STORAGE_UNAVAILABLE).")


@extend_schema(
    tags=TAGS,
    summary="Write a batch of audit events",
    description=f"Validates 1-{MAX_BATCH} events (all or nothing), buffers them durably and answers 202; they "
    "are searchable once flushed. Append-only: an event_id sent again keeps its first accepted version. "
    "event_id defaults to a UUID4 and timestamp to the acceptance time.",
    request=AuditBatchIn,
    responses={
        202: AcceptedOut,
        400: _error("Body is empty, not JSON or not an object (MALFORMED_JSON)."),
        413: _error("Body larger than the limit (PAYLOAD_TOO_LARGE)."),
        422: _error("Validation failed (VALIDATION_ERROR, BATCH_TOO_LARGE); every invalid event is listed."),
        503: _error("Buffer full (BUFFER_FULL) or buffer store down (STORAGE_UNAVAILABLE)."),
    },
    examples=[
        OpenApiExample(
            "one event",
            request_only=True,
            value={
                "logs": [
                    {
                        "event_id": "6c1f0f52-2b7e-4c55-9a51-0c1b2f3d4e5f",
                        "timestamp": "2025-09-30T10:15:30Z",
                        "actor_id": "backend-v2",
                        "actor_type": "service",
                        "action": "session.delete",
                        "resource_type": "session",
                        "resource_id": "3f0c5a52-0f59-4a4e-9d8e-1b7f0d1f6a11",
                        "outcome": "success",
                        "message": "删除翻译会话 game_text.xlsx",
                        "details": {"tasks": 640},
                    }
                ]
            },
        )
    ],
)
class AuditBatchView(APIView):
    required_scope = "write"

    @extend_schema(operation_id="v1_audit_logs_batch")
    def post(self, request: Request) -> Response:
        if request.stream is None:
            raise MalformedJSON("Request body is empty; a JSON object is expected.")
        count = services.audit_logs_batch_add(records=validate_audit_batch(request.data))
        request._request.log_extra = {"collection": "audit_logs", "count": count}
        now = dt.datetime.now(dt.UTC)
        return Response(
            {"status": "accepted", "count": count, "timestamp": now}, status=status.HTTP_202_ACCEPTED
        )


@extend_schema(
    tags=TAGS,
    summary="Search audit events",
    description="Matches ordered by timestamp (`order`, desc by default), ties by event_id. Offset pages cover "
    "the first 10,000 matches (page * page_size <= 10,000); past that, follow `next_cursor` with `cursor`. "
    "Events are searchable once flushed (no read-your-writes). Scope admin.",
    parameters=[
        *FILTERS,
        OpenApiParameter("order", OpenApiTypes.STR, enum=["desc", "asc"], default="desc"),
        OpenApiParameter("page", int, default=1, description="From 1; ignored with `cursor`."),
        OpenApiParameter("page_size", int, default=DEFAULT_PAGE_SIZE, description=f"1-{MAX_PAGE_SIZE}."),
        OpenApiParameter("cursor", OpenApiTypes.STR, description="The `next_cursor` of the previous page."),
    ],
    responses={200: AuditPageOut, 400: INVALID_QUERY, 503: UNAVAILABLE},
)
class AuditLogListView(APIView):
    required_scope = "admin"

    @extend_schema(operation_id="v1_audit_logs_list")
    def get(self, request: Request) -> Response:
        return Response(selectors.audit_logs_page(query=request.query_params))


class _ExportNegotiation(BaseContentNegotiation):
    """The export answers its own media type (``format``); errors are JSON whatever the Accept header,
    and DRF must not read ``?format=csv`` as a renderer choice (it would answer 404)."""

    def select_parser(self, request: Request, parsers: list) -> object | None:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


@extend_schema(
    tags=TAGS,
    summary="Export audit events",
    description="Every match (no 10,000 cap), streamed in constant memory, ascending by default. `ndjson`: one "
    "event per line. `csv`: a header row, every field quoted (RFC 4180), details as JSON, and a leading ' on "
    "any cell starting with = + - @, tab or carriage return (so spreadsheets do not run it). Scope admin.",
    parameters=[
        *FILTERS,
        OpenApiParameter("order", OpenApiTypes.STR, enum=["asc", "desc"], default="asc"),
        OpenApiParameter("format", OpenApiTypes.STR, enum=["ndjson", "csv"], default="ndjson"),
    ],
    responses={
        (200, "application/x-ndjson"): OpenApiResponse(
            OpenApiTypes.STR, description="One JSON event per line."
        ),
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row."),
        400: INVALID_QUERY,
        503: UNAVAILABLE,
    },
)
class AuditLogExportView(APIView):
    required_scope = "admin"
    content_negotiation_class = _ExportNegotiation
    _TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}

    @extend_schema(operation_id="v1_audit_logs_export")
    def get(self, request: Request) -> StreamingHttpResponse:
        fmt = request.query_params.get("format", "ndjson")
        if fmt not in self._TYPES:
            raise InvalidQuery(
                "Invalid query parameters.", errors=[{"field": "format", "message": "must be ndjson or csv"}]
            )
        filters, order = selectors.audit_export_query(query=request.query_params)
        response = StreamingHttpResponse(
            selectors.audit_logs_export(filters=filters, order=order, fmt=fmt), content_type=self._TYPES[fmt]
        )
        response["Content-Disposition"] = f'attachment; filename="audit-logs.{fmt}"'
        return response


@extend_schema(
    tags=TAGS,
    summary="Audit statistics",
    description="Over the matches of the filters: total, top 20 actions and actors, outcomes, and the count per "
    "UTC day (days with events, ascending). Scope admin.",
    parameters=FILTERS,
    responses={200: AuditStatsOut, 400: INVALID_QUERY, 503: UNAVAILABLE},
)
class AuditStatsView(APIView):
    required_scope = "admin"

    @extend_schema(operation_id="v1_audit_stats")
    def get(self, request: Request) -> Response:
        return Response(selectors.audit_stats_get(query=request.query_params))
