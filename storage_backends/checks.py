"""System checks of the storage layer (``manage.py check``, and before ``migrate``).

python manage.py check   # storage_backends.W001 when embedded-buffer records would be stranded,
                         # E001 when the OpenSearch audit plugin has no AUDIT_SEARCH_URL,
                         # W002 when Redis buffer shards beyond BUFFER_SHARDS hold records
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import DatabaseError, connections

from storage_backends import registry


@register()
def embedded_buffer_stranded(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Records left in the embedded buffer table are not seen by the Redis buffer.

    Switching a SQLite deployment from the embedded mode to Redis (setting ``REDIS_URL``) would leave
    what the embedded buffer still holds unflushed and unread: not lost (it stays in the file), but
    invisible. Cost: one COUNT on a table that is empty in every other case; only with a SQLite
    database and REDIS_URL set.
    """
    db = connections["default"]
    if not settings.REDIS_URL or db.vendor != "sqlite":
        return []
    try:
        with db.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM persistence_buffer")
            (held,) = cursor.fetchone()
    except DatabaseError:  # not migrated yet: nothing can be buffered there
        return []
    if not held:
        return []
    return [
        Warning(
            f"The embedded write buffer in the SQLite file still holds {held} accepted records, and "
            "REDIS_URL is set, so the Redis buffer is used and they would not be flushed or read.",
            hint="Flush them first with REDIS_URL unset: env -u REDIS_URL python manage.py flush_buffer",
            id="storage_backends.W001",
        )
    ]


@register()
def audit_search_configured(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The OpenSearch audit plugin needs AUDIT_SEARCH_URL: refused at start-up, not at the first
    audit request. Cost: reads two settings."""
    plugin = "storage_backends.search_opensearch.OpenSearchAuditSearch"
    if registry.backend_path("audit_logs") != plugin or settings.AUDIT_SEARCH_URL:
        return []
    return [
        Error(
            "STORAGE_BACKENDS['audit_logs'] (STORAGE_BACKEND_AUDIT_LOGS) is the OpenSearch plugin, "
            "but AUDIT_SEARCH_URL is not set.",
            hint="Set AUDIT_SEARCH_URL=http(s)://host:9200, or use storage_backends.search_sql.SQLAuditSearch.",
            id="storage_backends.E001",
        )
    ]


#: The largest BUFFER_SHARDS the settings accept: shards above the configured count are looked for
#: up to this one.
MAX_BUFFER_SHARDS = 64


@register()
def buffer_shards_stranded(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Records in Redis buffer shards beyond ``BUFFER_SHARDS`` are not flushed or read.

    Lowering ``BUFFER_SHARDS`` (e.g. 8 to 4) with records still buffered would leave those of the
    shards above it unflushed (not lost: they stay in Redis, and setting the old count back flushes
    them). Raising it from 1 strands nothing (shard 0 keeps the unsharded key names and is always
    flushed), but reads and the sessions check of task writes look in the new shard of a session
    until the old writes are flushed: change it with writes stopped and the buffer drained.
    Cost: one pipelined EXISTS per collection and shard above the count (one round trip); nothing
    when Redis does not answer.
    """
    if not settings.REDIS_URL:
        return []
    import redis

    from storage_backends import catalog

    shards = settings.BUFFER_SHARDS
    prefix = settings.BUFFER_KEY_PREFIX
    keys = [
        f"{prefix}:{collection}:{shard}"
        for collection in catalog.buffered_collections()
        for shard in range(shards, MAX_BUFFER_SHARDS)
    ]
    if not keys:
        return []
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        stranded = [key for key, found in zip(keys, pipe.execute(), strict=True) if found]
        client.close()
    except redis.RedisError:
        return []  # the buffer store's own checks (/health) report it
    if not stranded:
        return []
    return [
        Warning(
            f"The Redis write buffer holds records in shards beyond BUFFER_SHARDS={shards} "
            f"({', '.join(stranded[:5])}{', ...' if len(stranded) > 5 else ''}); they are not flushed or read.",
            hint="Set BUFFER_SHARDS back to the count they were written with, stop writes, run "
            "`python manage.py flush_buffer`, then lower it.",
            id="storage_backends.W002",
        )
    ]
