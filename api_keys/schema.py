"""OpenAPI for API keys: the ``X-API-Key`` security scheme, and per operation its scope
(``x-required-scope`` and a sentence in the description) with the 401/403/429 answers.

    SPECTACULAR_SETTINGS = {"POSTPROCESSING_HOOKS": [..., "api_keys.schema.document_auth"]}
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from api_keys.authentication import HEADER
from api_keys.scopes import ANY, required_scope

ERROR_COMPONENT = "ApiError"
ERROR_SCHEMA = {
    "type": "object",
    "description": "The error body of every 4xx/5xx answer (docs/api.md §0).",
    "properties": {
        "detail": {"type": "string"},
        "error_code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "required": ["detail", "error_code", "errors"],
}


class APIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api_keys.authentication.APIKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": HEADER,
            "description": "Scopes: read (GET endpoints), write (batch writes, flush, restore, status), "
            "admin (everything, including delete, cleanup and config). write does not imply read.",
        }


def _error(description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}},
    }
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()
        }
    return response


def document_auth(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: scope and auth/throttle answers on every /api/v1/ operation."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault(ERROR_COMPONENT, ERROR_SCHEMA)
    paths = result.get("paths", {})
    for path, _regex, method, callback in generator.endpoints or ():
        operation = paths.get(path, {}).get(method.lower())
        if operation is None or not path.startswith("/api/v1/"):
            continue
        scope = required_scope(method, getattr(callback, "cls", None))
        operation["x-required-scope"] = scope
        sentence = "Any valid API key." if scope == ANY else f"Needs an API key with the `{scope}` scope."
        operation["description"] = f"{operation.get('description', '')}\n\n{sentence}".strip()
        responses = operation.setdefault("responses", {})
        responses.setdefault(
            "401",
            _error(
                "No API key, or an unknown, revoked or expired one (NOT_AUTHENTICATED).",
                **{"WWW-Authenticate": "The scheme to use: the X-API-Key header."},
            ),
        )
        responses.setdefault("403", _error("The key lacks the scope (PERMISSION_DENIED)."))
        responses.setdefault(
            "429",
            _error("Rate limit exceeded (THROTTLED).", **{"Retry-After": "Seconds to wait before retrying."}),
        )
    return result
