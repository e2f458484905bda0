"""``GET /health``: is the service able to accept and store writes right now?

200 with ``status: healthy`` when the database and the buffer store answer, 503 with
``status: unhealthy`` (and which one failed) otherwise. No API key: probes call it.
"""

from __future__ import annotations

import logging
import time

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from persistence_site import __version__
from storage_backends.buffer import get_write_buffer

logger = logging.getLogger(__name__)
STARTED_AT = time.monotonic()


def database_healthy() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any driver error means "unreachable" to a probe
        logger.warning("health: database unreachable", exc_info=True)
        return False
    return True


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    db_ok = database_healthy()
    buffer = get_write_buffer()
    buffer_ok = buffer.ping()
    stats = buffer.stats() if buffer_ok else buffer.empty_stats()
    healthy = db_ok and buffer_ok
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "database": "healthy" if db_ok else "unhealthy",
        "buffer_store": "healthy" if buffer_ok else "unhealthy",
        "buffer": stats,
        "uptime_seconds": int(time.monotonic() - STARTED_AT),
        "version": __version__,
    }
    return JsonResponse(body, status=200 if healthy else 503)
