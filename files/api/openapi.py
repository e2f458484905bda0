"""OpenAPI descriptions of the files endpoints (docs/api.md §7), for drf-spectacular."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from core.openapi import ErrorOut
from files.models import FileKind, FileStatus


class FileOut(serializers.Serializer):
    file_id = serializers.CharField(help_text="Assigned by the service (UUID).")
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField(help_text="Bytes, measured by the service.")
    sha256 = serializers.CharField(help_text="Hex digest computed by the service; empty while pending.")
    status = serializers.ChoiceField(choices=FileStatus.values)
    kind = serializers.ChoiceField(choices=FileKind.values)
    session_id = serializers.CharField(allow_null=True)
    metadata = serializers.DictField()
    expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class UploadFormIn(serializers.Serializer):
    file = serializers.FileField(help_text="The bytes; the part's filename and content type are kept.")
    kind = serializers.ChoiceField(choices=FileKind.values, required=False)
    session_id = serializers.CharField(required=False, help_text="A translation session that exists.")
    metadata = serializers.CharField(required=False, help_text="A JSON object, as text.")
    expires_in = serializers.IntegerField(required=False, min_value=60, max_value=31_536_000)


UploadTargetOut = inline_serializer(
    "FileUploadTarget",
    {
        "method": serializers.ChoiceField(choices=["PUT", "POST"]),
        "url": serializers.CharField(),
        "headers": serializers.DictField(
            child=serializers.CharField(), help_text="Send these with the bytes."
        ),
        "expires_at": serializers.DateTimeField(),
    },
)
UploadUrlOut = inline_serializer("FileUploadUrl", {"file": FileOut(), "upload": UploadTargetOut})
DownloadUrlOut = inline_serializer(
    "FileDownloadUrl", {"url": serializers.CharField(), "expires_at": serializers.DateTimeField()}
)
DeletedOut = inline_serializer(
    "FileDeleted",
    {"status": serializers.CharField(help_text='Always "deleted".'), "file_id": serializers.CharField()},
)
FilePageOut = inline_serializer(
    "FilePage",
    {
        "total": serializers.IntegerField(),
        "page": serializers.IntegerField(),
        "page_size": serializers.IntegerField(),
        "total_pages": serializers.IntegerField(),
        "items": FileOut(many=True),
    },
)

NOT_FOUND = OpenApiResponse(ErrorOut, description='Unknown or expired file (NOT_FOUND, with "file_id").')
INCOMPLETE = OpenApiResponse(ErrorOut, description="UPLOAD_INCOMPLETE: the bytes are missing or differ.")
UNAVAILABLE = OpenApiResponse(ErrorOut, description="The object store or the database is unreachable.")
INVALID = OpenApiResponse(
    ErrorOut, description="A field is missing or invalid (VALIDATION_ERROR, SESSION_NOT_FOUND)."
)
MALFORMED = OpenApiResponse(ErrorOut, description="The body is not a JSON object (MALFORMED_JSON).")
TOO_LARGE = OpenApiResponse(ErrorOut, description="Larger than FILES_MAX_UPLOAD_BYTES (PAYLOAD_TOO_LARGE).")
INVALID_QUERY = OpenApiResponse(ErrorOut, description="A query parameter is malformed (INVALID_QUERY).")

LIST_PARAMETERS = [
    OpenApiParameter("page", int, description="From 1.", default=1),
    OpenApiParameter("page_size", int, description="1-100.", default=20),
    OpenApiParameter("session_id", OpenApiTypes.STR),
    OpenApiParameter("kind", OpenApiTypes.STR, enum=FileKind.values),
    OpenApiParameter("status", OpenApiTypes.STR, enum=FileStatus.values),
    OpenApiParameter("from_date", OpenApiTypes.STR, description="created_at on or after (ISO 8601)."),
    OpenApiParameter(
        "to_date", OpenApiTypes.STR, description="created_at on or before (a date: the whole day)."
    ),
]
REDIRECT_PARAMETER = OpenApiParameter(
    "redirect", OpenApiTypes.STR, enum=["true", "false"], description="false: answer the URL as JSON."
)
