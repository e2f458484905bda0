"""System endpoints under /api/v1/system/ (docs/api.md §6): Prometheus metrics and the configuration."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.services import audited
from system import metrics
from system.selectors import effective_config
from system.serializers import ConfigOut


class JSONErrorsNegotiation(BaseContentNegotiation):
    """The metrics view answers success in the scraper's format itself; errors (401, 429) are
    always JSON, whatever the Accept header, so DRF must not answer 406 to ``text/plain``."""

    def select_parser(self, request: Request, parsers: list) -> object | None:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


@extend_schema(
    tags=["system"],
    summary="Prometheus metrics",
    description="Request counts and latencies per endpoint (django-prometheus) and the service's own "
    "metrics (buffer size, flushes, storage operations, data loss), summed over every worker process. "
    "Prometheus text format 0.0.4, or OpenMetrics when the Accept header asks for it. With "
    "METRICS_PUBLIC=true no key is needed.",
    responses={
        (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="Prometheus text format."),
        (200, "application/openmetrics-text"): OpenApiResponse(OpenApiTypes.STR, description="OpenMetrics."),
    },
)
class MetricsView(APIView):
    required_scope = "any"
    public_setting = "METRICS_PUBLIC"
    content_negotiation_class = JSONErrorsNegotiation

    def get(self, request: Request) -> HttpResponse:
        body, content_type = metrics.exposition(request.headers.get("Accept"))
        return HttpResponse(body, content_type=content_type)


@extend_schema(
    tags=["system"],
    summary="Effective configuration",
    description="The configuration this instance runs with: buffer sizes and intervals, retention days, "
    "storage backends and the collections each serves, rate limits. Never a secret: URLs have their "
    "password masked and database credentials are left out.",
    responses={200: ConfigOut},
)
class ConfigView(APIView):
    required_scope = "admin"

    def get(self, request: Request) -> Response:
        with audited("system_config.read", resource_type="system", resource_id="config"):
            return Response(ConfigOut(effective_config()).data)
