"""The contract's error body for every 4xx/5xx: ``{"detail", "error_code", "errors": [...]}``.

Raise one of the exceptions below (or any DRF exception) from a view, or let a domain exception
of core.exceptions (``BufferFull``, ``StorageUnavailable``, ...) rise from a service or a storage
plugin; ``api_exception_handler`` renders both. Unknown URLs under ``/api/`` and unhandled exceptions get the same shape from
``api_not_found`` and ``api_server_error``.

    raise RequestValidationError([{"field": "tasks[3].status", "message": "..."}])
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found, server_error
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from rest_framework import exceptions, status

from core import tracing
from core.exceptions import BufferFull, FlushFailed, InvalidRecords, ServiceException, StorageUnavailable

if TYPE_CHECKING:
    from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ServiceError(exceptions.APIException):
    """Base for the service's own errors: a status, an ``error_code`` and optional extras."""

    status_code = status.HTTP_400_BAD_REQUEST
    error_code = "BAD_REQUEST"
    default_detail = "Bad request."

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, str]] | None = None,
        extra: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail or self.default_detail)
        self.errors = errors or []
        self.extra = extra or {}
        self.retry_after = retry_after


class MalformedJSON(ServiceError):
    status_code = status.HTTP_400_BAD_REQUEST
    error_code = "MALFORMED_JSON"
    default_detail = "Request body must be a JSON object."


class InvalidQuery(ServiceError):
    status_code = status.HTTP_400_BAD_REQUEST
    error_code = "INVALID_QUERY"
    default_detail = "Query parameters are invalid."


class NotFound(ServiceError):
    status_code = status.HTTP_404_NOT_FOUND
    error_code = "NOT_FOUND"
    default_detail = "Not found."


class Conflict(ServiceError):
    """409: the request clashes with the stored state (a taken unique value, a disabled user)."""

    status_code = status.HTTP_409_CONFLICT
    error_code = "CONFLICT"
    default_detail = "The request conflicts with the stored state."


class PayloadTooLarge(ServiceError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    error_code = "PAYLOAD_TOO_LARGE"
    default_detail = "Request body is larger than the configured limit."


class RequestValidationError(ServiceError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    error_code = "VALIDATION_ERROR"
    default_detail = "Request body failed validation."


def validation_errors(exc: PydanticValidationError) -> list[dict[str, str]]:
    """pydantic's errors as the contract's ``[{"field", "message"}]`` list (an extra key is "unknown field")."""
    return [
        {
            "field": ".".join(str(p) for p in error["loc"]),
            "message": "unknown field" if error["type"] == "extra_forbidden" else error["msg"],
        }
        for error in exc.errors(include_url=False, include_input=False)
    ]


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], body: Any) -> M:
    """A request body as ``model``: 400 MALFORMED_JSON when it is not an object, 422 listing each bad field."""
    if not isinstance(body, dict):
        raise MalformedJSON("Request body must be a JSON object.")
    try:
        with tracing.span("validate", schema=model.__name__):
            return model.model_validate(body)
    except PydanticValidationError as exc:
        raise RequestValidationError(errors=validation_errors(exc)) from None


class BatchTooLarge(RequestValidationError):
    error_code = "BATCH_TOO_LARGE"
    default_detail = "Batch holds more records than allowed."


class SessionNotFound(RequestValidationError):
    error_code = "SESSION_NOT_FOUND"
    default_detail = "Some tasks name a session that does not exist."


#: The domain exceptions (core.exceptions), by class, to the contract's status and error_code; an
#: exception takes the entry of its nearest ancestor.
DOMAIN_ERRORS: dict[type[ServiceException], tuple[int, str]] = {
    BufferFull: (status.HTTP_503_SERVICE_UNAVAILABLE, "BUFFER_FULL"),
    FlushFailed: (status.HTTP_503_SERVICE_UNAVAILABLE, "FLUSH_FAILED"),
    StorageUnavailable: (status.HTTP_503_SERVICE_UNAVAILABLE, "STORAGE_UNAVAILABLE"),
    InvalidRecords: (status.HTTP_422_UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
}


def domain_status(exc: ServiceException) -> tuple[int, str]:
    """The contract's status and error_code of a domain exception."""
    for cls in type(exc).__mro__:
        if cls in DOMAIN_ERRORS:
            return DOMAIN_ERRORS[cls]
    return status.HTTP_500_INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"


# DRF's own exceptions, by class, to the contract's codes.
_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "MALFORMED_JSON",
    exceptions.NotAuthenticated: "NOT_AUTHENTICATED",
    exceptions.AuthenticationFailed: "NOT_AUTHENTICATED",
    exceptions.PermissionDenied: "PERMISSION_DENIED",
    exceptions.NotFound: "NOT_FOUND",
    exceptions.MethodNotAllowed: "METHOD_NOT_ALLOWED",
    exceptions.NotAcceptable: "NOT_ACCEPTABLE",
    exceptions.UnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
    exceptions.Throttled: "THROTTLED",
}


def flatten_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested error detail as the contract's flat ``[{"field", "message"}]`` list."""
    if isinstance(detail, dict):
        items: list[dict[str, str]] = []
        for key, value in detail.items():
            if key == "non_field_errors":
                field = prefix
            elif isinstance(key, int):
                field = f"{prefix}[{key}]"
            else:
                field = f"{prefix}.{key}" if prefix else str(key)
            items.extend(flatten_errors(value, field))
        return items
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [{"field": prefix, "message": str(item)} for item in detail]
        items = []
        for index, value in enumerate(detail):
            items.extend(flatten_errors(value, f"{prefix}[{index}]"))
        return items
    return [{"field": prefix, "message": str(detail)}]


def error_body(
    detail: str, error_code: str, errors: list[dict[str, str]] | None = None, **extra: Any
) -> dict[str, Any]:
    return {"detail": detail, "error_code": error_code, "errors": errors or [], **extra}


def error_parts(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """The contract's status, body and headers for ``exc``, or None for an exception that is a bug
    (Django's handler500 answers it). The one mapping of errors to answers: DRF's exception
    handler below and the lean routes (core.lean, api_keys.lean) both render with it."""
    if isinstance(exc, Http404):
        exc = NotFound()
    elif isinstance(exc, DatabaseOperationalError | DatabaseInterfaceError):
        # The database is down or the connection broke: a dependency outage, not a bug.
        logger.warning("database unavailable", exc_info=True)
        exc = StorageUnavailable("The database is unavailable; retry later.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    headers: dict[str, str] = {}
    if isinstance(exc, ServiceException):
        status_code, error_code = domain_status(exc)
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return status_code, error_body(exc.detail, error_code, exc.errors, **exc.extra), headers
    if not isinstance(exc, exceptions.APIException):
        return None

    if isinstance(exc, ServiceError):
        body = error_body(str(exc.detail), exc.error_code, exc.errors, **exc.extra)
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, exceptions.ValidationError):
        body = error_body("Request body failed validation.", "VALIDATION_ERROR", flatten_errors(exc.detail))
        exc.status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    else:
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "ERROR")
        body = error_body(str(exc.detail), code)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            exc.status_code = status.HTTP_401_UNAUTHORIZED
            headers["WWW-Authenticate"] = 'APIKey realm="api", header="X-API-Key"'
        wait = getattr(exc, "wait", None)
        if wait is not None:
            headers["Retry-After"] = str(max(int(wait + 0.999), 1))
    return exc.status_code, body, headers


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF ``EXCEPTION_HANDLER``: every error in the contract's shape (``error_parts``)."""
    # Imported here: rest_framework.views loads the renderer settings, which import this module.
    from rest_framework.response import Response
    from rest_framework.views import set_rollback

    parts = error_parts(exc)
    if parts is None:
        return None  # a bug: Django's handler500 (api_server_error) answers it
    status_code, body, headers = parts
    set_rollback()
    return Response(body, status=status_code, headers=headers)


def _is_api(request: HttpRequest) -> bool:
    return bool(request.path.startswith("/api/"))


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: JSON under /api/, Django's page elsewhere (admin)."""
    if _is_api(request):
        return JsonResponse(error_body(f"No endpoint at {request.path}.", "NOT_FOUND"), status=404)
    return page_not_found(request, exception)


def api_server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: never a stack trace or SQL in the body."""
    if _is_api(request) or request.path == "/health":
        return JsonResponse(
            error_body("Internal server error; it has been logged.", "INTERNAL_ERROR"), status=500
        )
    return server_error(request)
