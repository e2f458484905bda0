"""Plain Django views for the lean routes (core.lean) that answer exactly as a DRF API view would.

A lean view is built from the DRF view it stands in for and a function doing that view's work. It
runs what DRF runs for such a view, with the same functions: the limits and the key
(``authentication.request_api_key``), the scope of the DRF view's ``required_scope``
(``permissions.check_scope``), the JSON body (``core.json_codec.parse_body``), the view's work,
errors in the contract's shape (``core.errors.error_parts``), the body rendered by
``core.json_codec.dumps`` as ``application/json``, and the DRF view's ``Allow`` header on every
answer. What it leaves out is DRF's machinery around them (request wrapping, negotiation, parser
and renderer selection), which the lean routes' requests never need (core.lean lets only plain
ones through).

    validate = lean_api_view(ValidateView, lambda request, body: services.validate(**body), body=True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework.views import APIView, set_rollback

from api_keys.authentication import request_api_key
from api_keys.permissions import check_scope
from core.errors import error_parts
from core.json_codec import dumps, parse_body

CONTENT_TYPE = "application/json"  # core.json_codec.ORJSONRenderer's media type, no charset


class RenderedResponse(HttpResponse):
    """A response whose body is already rendered, but which Django treats as DRF's ``Response``
    (a template response with no template): the template-response middleware see it, so
    django-prometheus counts it under ``templatename="None"`` as it counts every DRF answer."""

    template_name = None

    def render(self) -> RenderedResponse:
        return self


def lean_api_view(
    drf_view: type[APIView], work: Callable[..., Any], *, body: bool = False, status: int = 200
) -> Callable[..., RenderedResponse]:
    """A view answering like ``drf_view`` (scopes, headers, errors) with ``work(request, **kwargs)``'s
    value, or ``work(request, body, **kwargs)`` with the request's JSON when ``body`` (None for an
    empty body, as the DRF views see it)."""
    declared = drf_view()
    declared.setup(None)  # as DRF does per request: HEAD where GET is, so Allow lists the same methods
    headers = declared.default_response_headers
    if "Vary" in headers:
        raise ValueError(f"{drf_view.__name__} negotiates between renderers: not a lean view")

    def view(request: HttpRequest, **kwargs: Any) -> RenderedResponse:
        try:
            check_scope(request_api_key(request), request.method or "", declared)
            if body:
                raw = request.read() if int(request.META.get("CONTENT_LENGTH") or 0) else None
                value = work(request, None if raw is None else parse_body(raw), **kwargs)
            else:
                value = work(request, **kwargs)
            response = RenderedResponse(dumps(value), content_type=CONTENT_TYPE, status=status)
        except Exception as exc:
            parts = error_parts(exc)
            if parts is None:
                raise  # a bug: Django answers 500 (handler500), as it does for a DRF view
            code, error, extra = parts
            set_rollback()
            response = RenderedResponse(dumps(error), content_type=CONTENT_TYPE, status=code)
            for name, value in extra.items():
                response[name] = value
        for name, value in headers.items():
            response[name] = value
        return response

    view.__name__ = view.__qualname__ = f"{drf_view.__name__}_lean"
    view.__module__ = drf_view.__module__
    return view
