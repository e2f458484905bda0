"""File endpoints (docs/api.md §7), thin: parse, call files.services / files.selectors, answer.

POST   /api/v1/storage/files/upload              write   multipart, streamed to the store
POST   /api/v1/storage/files/upload-url          write   direct upload: a pending file + URL
POST   /api/v1/storage/files/<id>/complete       write   check the uploaded object
GET    /api/v1/storage/files                     read    list (filters, pagination)
GET    /api/v1/storage/files/<id>                read    metadata
DELETE /api/v1/storage/files/<id>                write   bytes and metadata
GET    /api/v1/storage/files/<id>/download       read    302 to a presigned URL (s3) or bytes
GET|PUT /api/v1/storage/files/<id>/content?token=  (signed URL, no key; local store only)
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ParseError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.services import audited
from core.errors import NotFound, PayloadTooLarge, RequestValidationError
from core.pagination import page_of, page_params
from files import metrics, services
from files.api import openapi as oa
from files.errors import ObjectStoreUnavailable, UploadIncomplete
from files.filters import FileFilter
from files.models import File, FileStatus
from files.selectors import file_get, file_repr, visible
from files.uploads import StreamingUploadHandler
from files.validation import UploadUrlIn, check_filename, validate_form, validate_upload_url
from storage_backends.object_store import ObjectStore, ObjectStoreError, get_object_store
from translation.filters import valid_filterset

TAGS = ["files"]
# Form overhead allowed above FILES_MAX_UPLOAD_BYTES in a multipart body (boundaries, fields).
FORM_OVERHEAD = 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _iso(value: Any) -> str:
    return value.astimezone().isoformat().replace("+00:00", "Z")


class FileUploadView(APIView):
    required_scope = "write"
    parser_classes: list[Any] = []

    @extend_schema(
        tags=TAGS,
        summary="Upload a file (multipart/form-data, streamed to the store)",
        description="Part `file` (required) and optional fields kind, session_id, metadata (JSON text), "
        "expires_in (60-31,536,000 s). The bytes stream to the object store while sha256 and size are "
        "computed. Scope write.",
        request={"multipart/form-data": oa.UploadFormIn},
        responses={201: oa.FileOut, 413: oa.TOO_LARGE, 422: oa.INVALID, 503: oa.UNAVAILABLE},
    )
    def post(self, request: Request) -> Response:
        with audited("file.upload", resource_type="file") as event:
            django_request = request._request
            if not (django_request.content_type or "").startswith("multipart/form-data"):
                raise RequestValidationError(
                    "The body must be multipart/form-data with a part named 'file'.",
                    errors=[{"field": "file", "message": "required"}],
                )
            store = get_object_store()
            file_id = services.new_file_id()
            event.resource_id = file_id
            key = services.object_key(file_id)
            handler = StreamingUploadHandler(store, key, settings.FILES_MAX_UPLOAD_BYTES)
            django_request.upload_handlers = [handler]
            try:
                form = django_request.POST  # parses the body, streaming the file part to the store
            except ObjectStoreError as exc:
                metrics.ERRORS.labels(backend=store.name, operation="upload").inc()
                raise ObjectStoreUnavailable(str(exc)) from exc
            except MultiPartParserError as exc:  # 400 in the contract's shape, as DRF's parser would
                handler.abort()
                raise ParseError(f"The multipart body could not be parsed: {exc}") from exc
            except BaseException:
                handler.abort()
                raise
            stored = handler.result
            if stored is None:
                raise RequestValidationError(
                    "The 'file' part is missing.", errors=[{"field": "file", "message": "required"}]
                )
            try:
                fields = validate_form({name: form[name] for name in form})
                check_filename(stored.filename)
                services.check_session(fields.session_id)
            except BaseException:
                with contextlib.suppress(ObjectStoreError):  # else an orphan, for the sweep
                    store.delete_objects([key])
                raise
            row = services.file_create(stored=stored, fields=fields, file_id=file_id, key=key)
            return Response(file_repr(row), status=201)


def _local_url(request: Request, row: File, method: str) -> tuple[str, Any]:
    token, expires = services.sign_token(file_id=row.file_id, method=method, ttl=settings.FILES_URL_TTL)
    path = reverse("files-content:file-content", kwargs={"file_id": row.file_id})
    return request.build_absolute_uri(f"{path}?token={token}"), expires


class FileUploadUrlView(APIView):
    required_scope = "write"

    @extend_schema(
        tags=TAGS,
        summary="Start a direct upload to the object store",
        description="A pending File and where to send the bytes (PUT with the given headers before "
        "expires_at); then POST .../complete. Scope write.",
        request=UploadUrlIn,
        responses={201: oa.UploadUrlOut, 400: oa.MALFORMED, 422: oa.INVALID, 503: oa.UNAVAILABLE},
    )
    def post(self, request: Request) -> Response:
        fields = validate_upload_url(request.data, max_size=settings.FILES_MAX_UPLOAD_BYTES)
        row, upload = services.file_upload_url_create(fields=fields)
        if upload["url"] is None:
            upload["url"], upload["expires_at"] = _local_url(request, row, "PUT")
        upload["expires_at"] = _iso(upload["expires_at"])
        return Response({"file": file_repr(row), "upload": upload}, status=201)


class FileCompleteView(APIView):
    required_scope = "write"

    @extend_schema(
        tags=TAGS,
        summary="Complete a direct upload",
        description="Checks the stored object (exists, declared size and sha256) and makes the file "
        "available; 409 UPLOAD_INCOMPLETE names what is wrong. Scope write.",
        request=None,
        responses={200: oa.FileOut, 404: oa.NOT_FOUND, 409: oa.INCOMPLETE, 503: oa.UNAVAILABLE},
    )
    def post(self, request: Request, file_id: str) -> Response:
        return Response(file_repr(services.file_complete(file_id=file_id)))


class FileListView(APIView):
    required_scope = "read"

    @extend_schema(
        tags=TAGS,
        summary="List files, newest first",
        operation_id="files_list",
        parameters=oa.LIST_PARAMETERS,
        responses={200: oa.FilePageOut, 400: oa.INVALID_QUERY},
    )
    def get(self, request: Request) -> Response:
        params = page_params(request.query_params)
        query = {k: v for k, v in request.query_params.items() if k not in ("page", "page_size")}
        filterset = valid_filterset(FileFilter, query, File.objects.filter(visible()))
        return Response(page_of(filterset.qs.order_by("-created_at", "file_id"), params, render=file_repr))


class FileDetailView(APIView):
    required_scope = {"GET": "read", "HEAD": "read", "OPTIONS": "read", "DELETE": "write"}

    @extend_schema(
        tags=TAGS,
        summary="A file's metadata",
        operation_id="files_retrieve",
        responses={200: oa.FileOut, 404: oa.NOT_FOUND},
    )
    def get(self, request: Request, file_id: str) -> Response:
        return Response(file_repr(file_get(file_id=file_id)))

    @extend_schema(
        tags=TAGS,
        summary="Delete a file (bytes, then metadata)",
        responses={200: oa.DeletedOut, 404: oa.NOT_FOUND, 503: oa.UNAVAILABLE},
    )
    def delete(self, request: Request, file_id: str) -> Response:
        services.file_delete(file_id=file_id)
        return Response({"status": "deleted", "file_id": file_id})


class FileDownloadView(APIView):
    required_scope = "read"

    @extend_schema(
        tags=TAGS,
        summary="Download a file",
        description="s3: 302 to a presigned URL valid FILES_URL_TTL seconds. local: the bytes (Range "
        "supported). redirect=false: the URL as JSON. 409 UPLOAD_INCOMPLETE for a pending file.",
        parameters=[oa.REDIRECT_PARAMETER],
        responses={
            (200, "application/json"): oa.DownloadUrlOut,
            (200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The bytes (local store)."),
            (206, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY, description="A range of the bytes (local store)."
            ),
            302: OpenApiResponse(description="To the presigned URL (s3)."),
            400: oa.INVALID_QUERY,
            404: oa.NOT_FOUND,
            409: oa.INCOMPLETE,
            416: OpenApiResponse(description="The range is outside the file (local store)."),
            503: oa.UNAVAILABLE,
        },
    )
    def get(self, request: Request, file_id: str) -> HttpResponse:
        with audited("file.download", resource_type="file", resource_id=file_id):
            row = file_get(file_id=file_id)
            if row.status != FileStatus.AVAILABLE:
                raise UploadIncomplete("The file's upload is not complete.", extra={"file_id": file_id})
            redirect = request.query_params.get("redirect", "true")
            if redirect not in ("true", "false"):
                from core.errors import InvalidQuery

                raise InvalidQuery(errors=[{"field": "redirect", "message": "must be true or false"}])
            store = get_object_store()
            metrics.DOWNLOADS.labels(backend=store.name).inc()
            if store.direct:
                try:
                    url = store.download_url(
                        row.object_key,
                        filename=row.filename,
                        content_type=row.content_type,
                        ttl=settings.FILES_URL_TTL,
                    )
                except ObjectStoreError as exc:
                    metrics.ERRORS.labels(backend=store.name, operation="download").inc()
                    raise ObjectStoreUnavailable(str(exc)) from exc
                from datetime import timedelta

                from django.utils import timezone

                expires = timezone.now() + timedelta(seconds=settings.FILES_URL_TTL)
                if redirect == "false":
                    return Response({"url": url, "expires_at": _iso(expires)})
                return HttpResponseRedirect(url)
            if redirect == "false":
                url, expires = _local_url(request, row, "GET")
                return Response({"url": url, "expires_at": _iso(expires)})
            return serve_bytes(store, row, request.META.get("HTTP_RANGE"))


def serve_bytes(store: ObjectStore, row: File, range_header: str | None) -> HttpResponse:
    """The stored bytes with the stored filename and type; one ``bytes=`` range gives a 206."""
    try:
        handle = store.open(row.object_key)
    except FileNotFoundError as exc:
        raise NotFound("File not found", extra={"file_id": row.file_id}) from exc
    size = row.size
    start, end, status = 0, size - 1, 200
    match = _RANGE.match(range_header or "")
    if match and (match.group(1) or match.group(2)):
        first, last = match.group(1), match.group(2)
        if first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:
            start, end = max(size - int(last), 0), size - 1
        if start >= size or start > end:
            handle.close()
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        status = 206
    handle.seek(start)
    length = max(end - start + 1, 0)

    def chunks() -> Iterator[bytes]:
        remaining = length
        with handle:
            while remaining > 0:
                chunk = handle.read(min(1024 * 1024, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    response = StreamingHttpResponse(chunks(), status=status, content_type=row.content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = content_disposition_header(True, row.filename)
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    metrics.DOWNLOADED_BYTES.labels(backend=store.name).inc(length)
    return response


class FileContentView(APIView):
    """The local store's signed URLs: GET the bytes, PUT a direct upload. No API key: the token is
    the permission (signed with SECRET_KEY, bound to the file and method, expiring)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes: list[Any] = []
    required_scope = "any"

    @extend_schema(exclude=True)
    def get(self, request: Request, file_id: str) -> HttpResponse:
        services.check_token(token=request.query_params.get("token", ""), file_id=file_id, method="GET")
        row = file_get(file_id=file_id)
        store = get_object_store()
        if store.direct or row.status != FileStatus.AVAILABLE:
            raise NotFound("File not found", extra={"file_id": file_id})
        return serve_bytes(store, row, request.META.get("HTTP_RANGE"))

    @extend_schema(exclude=True)
    def put(self, request: Request, file_id: str) -> Response:
        services.check_token(token=request.query_params.get("token", ""), file_id=file_id, method="PUT")
        row = file_get(file_id=file_id)
        if get_object_store().direct or row.status != FileStatus.PENDING:
            raise NotFound("File not found", extra={"file_id": file_id})
        stream = request._request

        def chunks() -> Iterator[bytes]:
            while chunk := stream.read(256 * 1024):
                yield chunk

        try:
            services.store_body(row=row, chunks=chunks())
        except PayloadTooLarge:
            raise
        return Response({"status": "stored", "file_id": file_id})
