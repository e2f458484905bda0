"""``GET /health``: is the service able to accept and store writes right now?

200 with ``status: healthy`` when the database and the buffer store answer, 503 with
``status: unhealthy`` (and which one failed) otherwise. No API key: probes call it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import __version__
from storage_backends import catalog, registry
from storage_backends.buffer import get_write_buffer
from storage_backends.object_store import object_store_health
from storage_backends.sql import SQLBackend

logger = logging.getLogger(__name__)
STARTED_AT = time.monotonic()


def databases() -> list[str]:
    """The databases the service needs: the default one (API keys, users, dead letters, the
    buffer's checkpoint) and each one a collection is routed to through the SQL plugin."""
    aliases = [DEFAULT_DB_ALIAS]
    for collection in catalog.declared():
        if registry.backend_path(collection) is None:
            continue
        backend = registry.backend(collection)
        if isinstance(backend, SQLBackend) and backend.database not in aliases:
            aliases.append(backend.database)
    return aliases


def database_healthy() -> bool:
    """True when every database of ``databases()`` answers."""
    for alias in databases():
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception:  # any driver error means "unreachable" to a probe
            logger.warning("health: database unreachable", extra={"database": alias}, exc_info=True)
            return False
    return True


class _AlwaysJSON(BaseContentNegotiation):
    """JSON whatever the probe's Accept header says (a 406 would read as "down")."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ) -> Any:
        return renderers[0], renderers[0].media_type


_STATE = serializers.ChoiceField(choices=["healthy", "unhealthy"])
HealthOut = inline_serializer(
    "Health",
    {
        "status": _STATE,
        "database": _STATE,
        "buffer_store": _STATE,
        "object_store": serializers.ChoiceField(
            choices=["healthy", "unhealthy"],
            help_text="The files app's object store (FILES_BACKEND); informative, not part of status.",
        ),
        "buffer": inline_serializer(
            "BufferStats",
            {
                "sessions_count": serializers.IntegerField(),
                "tasks_count": serializers.IntegerField(),
                "audit_logs_count": serializers.IntegerField(),
                "total_count": serializers.IntegerField(help_text="Records of every collection."),
                "capacity": serializers.IntegerField(help_text="Records buffered before writes get 503."),
                "usage_percent": serializers.FloatField(),
                "flush_size": serializers.IntegerField(help_text="Records that trigger a flush."),
                "last_flush": serializers.DateTimeField(allow_null=True),
            },
        ),
        "uptime_seconds": serializers.IntegerField(),
        "version": serializers.CharField(),
    },
)


class HealthView(APIView):
    """No key, no throttling: load balancers and probes call it every few seconds."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    content_negotiation_class = _AlwaysJSON

    @extend_schema(
        tags=["system"],
        summary="Health of the service",
        description="200 when the database and the buffer store answer, 503 (status unhealthy, naming "
        "which one failed) otherwise. Needs no API key.",
        responses={
            200: OpenApiResponse(HealthOut, description="Healthy."),
            503: OpenApiResponse(HealthOut, description="The database or the buffer store is unreachable."),
        },
        auth=[],
    )
    def get(self, request: Request) -> Response:
        body, healthy = health_report()
        return Response(body, status=200 if healthy else 503)


def health_report() -> tuple[dict[str, Any], bool]:
    """The /health body and whether the service is healthy."""
    db_ok = database_healthy()
    buffer = get_write_buffer()
    buffer_ok = buffer.ping()
    stats = buffer.stats() if buffer_ok else buffer.empty_stats()
    healthy = db_ok and buffer_ok
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "database": "healthy" if db_ok else "unhealthy",
        "buffer_store": "healthy" if buffer_ok else "unhealthy",
        # Files only: an object-store outage does not stop the service accepting and storing writes.
        "object_store": object_store_health(),
        "buffer": stats,
        "uptime_seconds": int(time.monotonic() - STARTED_AT),
        "version": __version__,
    }
    return body, healthy


health = HealthView.as_view()
