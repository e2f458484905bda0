"""Reads for the system endpoints: the effective, non-secret configuration.

effective_config()["buffer"]["flush_size"]   # -> 1000
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework.settings import api_settings

from core import __version__
from storage_backends.registry import Route, parse_route

logger = logging.getLogger(__name__)
MASK = "***"


def mask_url(url: str | None) -> str | None:
    """``url`` with its password (if any) replaced by ``***``; None stays None."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not parseable: show nothing of it rather than risk a secret
        return MASK
    if not password:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostinfo}"))


def _configured_backends() -> dict[str, Route]:
    """collection -> (dotted backend path, options), from ``STORAGE_BACKENDS`` (empty when not
    configured)."""
    backends = getattr(settings, "STORAGE_BACKENDS", None)
    if not isinstance(backends, Mapping):
        return {}
    return {collection: parse_route(collection, entry) for collection, entry in backends.items()}


def _backend_name(dotted_path: str) -> str:
    try:
        return str(import_string(dotted_path).name)
    except Exception:  # unimportable or nameless: the registry reports it when used
        return dotted_path.rsplit(".", 1)[-1]


def storage_backend_names() -> list[str]:
    """The short names of the configured backends (the ``backend`` label of storage metrics)."""
    return sorted({_backend_name(path) for path, _ in _configured_backends().values()})


def _shown_option(key: str, value: Any) -> Any:
    """An option as /system/config shows it: secrets masked, URLs without their password."""
    if any(word in key.lower() for word in ("password", "secret", "token", "key")):
        return MASK
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


def storage_config() -> dict[str, Any]:
    """The enabled backends, each with the collections it serves, and the reverse mapping.

    One entry per backend instance (class and options); ``options`` only where the route sets some
    (e.g. the SQL plugin's ``database``)."""
    backends: dict[Route, dict[str, Any]] = {}
    collections: dict[str, str] = {}
    for collection, (dotted_path, options) in sorted(_configured_backends().items()):
        name = _backend_name(dotted_path)
        entry = backends.get((dotted_path, options))
        if entry is None:
            entry = backends[dotted_path, options] = {"name": name, "path": dotted_path, "collections": []}
            if options:
                entry["options"] = {key: _shown_option(key, value) for key, value in options}
        entry["collections"].append(collection)
        collections[collection] = name
    return {"backends": list(backends.values()), "collections": collections}


def _database_config() -> dict[str, Any]:
    db = settings.DATABASES["default"]
    engine = db.get("ENGINE", "")
    return {
        "engine": engine.rsplit(".", 1)[-1],
        "name": str(db.get("NAME") or ""),
        "host": db.get("HOST") or None,
        "port": int(db["PORT"]) if db.get("PORT") else None,
    }


def effective_config() -> dict[str, Any]:
    """Everything an operator needs to see what this instance runs with; never a secret
    (no SECRET_KEY, no passwords: URLs are masked, database credentials left out)."""
    redis_url = getattr(settings, "REDIS_URL", None)
    return {
        "version": __version__,
        "settings_module": os.environ.get("DJANGO_SETTINGS_MODULE", ""),
        "debug": bool(settings.DEBUG),
        "database": _database_config(),
        "buffer": {
            "store": "redis" if redis_url else "memory",
            "url": mask_url(redis_url),
            "flush_size": settings.BUFFER_FLUSH_SIZE,
            "flush_interval_seconds": settings.BUFFER_FLUSH_INTERVAL,
            "capacity": settings.BUFFER_CAPACITY,
            "lock_ttl_seconds": getattr(settings, "BUFFER_LOCK_TTL", None),
        },
        "stats_cache_seconds": settings.STATS_CACHE_SECONDS,
        "retention": {
            "completed_days": settings.RETENTION_COMPLETED_DAYS,
            "failed_days": settings.RETENTION_FAILED_DAYS,
        },
        "storage": storage_config(),
        "files": {
            "backend": settings.FILES_BACKEND,
            "root": settings.FILES_ROOT if settings.FILES_BACKEND == "local" else None,
            "s3_endpoint_url": mask_url(settings.FILES_S3_ENDPOINT_URL),
            "s3_bucket": settings.FILES_S3_BUCKET or None,
            "max_upload_bytes": settings.FILES_MAX_UPLOAD_BYTES,
            "url_ttl_seconds": settings.FILES_URL_TTL,
            "pending_ttl_seconds": settings.FILES_PENDING_TTL,
        },
        "celery": {"broker_url": mask_url(getattr(settings, "CELERY_BROKER_URL", None))},
        "api": {
            "auth_enabled": bool(settings.API_AUTH_ENABLED),
            "auth_header": "X-API-Key",
            "throttle_rates": dict(api_settings.DEFAULT_THROTTLE_RATES),
            "trusted_proxy_count": api_settings.NUM_PROXIES,
            "metrics_public": bool(getattr(settings, "METRICS_PUBLIC", False)),
            "request_max_body_bytes": settings.REQUEST_MAX_BODY_BYTES,
        },
        "logging": {"level": settings.LOG_LEVEL, "format": settings.LOG_FORMAT},
    }
