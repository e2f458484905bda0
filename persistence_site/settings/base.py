"""Settings shared by every mode, read from the environment in one place (persistence_site.config).

Each section links to the Django documentation of the settings it holds.
"""

import os
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from persistence_site.config import (
    BASE_DIR,
    LOG_FORMATS,
    LOG_LEVELS,
    choice,
    database_config,
    load_env,
    positive_int,
)

env = load_env()

# --- Core ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#core-settings
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-local-development-key-not-for-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
ROOT_URLCONF = "persistence_site.urls"
WSGI_APPLICATION = "persistence_site.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Applications and middleware -----------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#installed-apps
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc assets, served locally (no CDN)
    "django_prometheus",
    # The library must be installed for its abstract model; api_keys holds the concrete one.
    "rest_framework_api_key",
    "api_keys",
    "storage_backends",
    "translation",
    "files",
    "users",
    "audit",
    "recovery",
    "system",
]

# django-prometheus's pair wraps everything else, so its latencies cover the whole stack.
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.middleware.RequestLogMiddleware",
    "core.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin, API docs) from gunicorn itself, compressed and cacheable.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The request being served, for the audit events the services record (actor, address, id).
    "audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-prometheus's, with its labelled series looked up once per process (same metrics).
    "core.middleware.PrometheusAfterMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#databases
DATABASES = {"default": database_config(env)}

# --- Internationalisation and time -----------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/i18n/
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/static-files/
STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "data" / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Request limits ---------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#data-upload-max-memory-size
# A batch of 1000 ordinary tasks is about 1 MB; 32 MiB leaves room for long texts while keeping
# one request from exhausting a worker's memory. Larger bodies get 413 PAYLOAD_TOO_LARGE.
REQUEST_MAX_BODY_BYTES = positive_int(env, "REQUEST_MAX_BODY_BYTES", 32 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BODY_BYTES

# --- Buffer store and write buffer -------------------------------------------------------------
# No REDIS_URL means the embedded mode: the buffer is a table in the SQLite database file, flushed
# by a background thread. It needs that file: with MySQL/MariaDB the buffer must be Redis.
REDIS_URL = env.str("REDIS_URL", default="") or None
if REDIS_URL is None and not DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    raise ImproperlyConfigured(
        "REDIS_URL must be set when DATABASE_URL names a MySQL/MariaDB database (redis://host:6379/0): "
        "the write buffer lives in Redis then. Without Redis, use the embedded mode (a sqlite:/// "
        "DATABASE_URL or none), whose buffer is a table in the SQLite file."
    )
BUFFER_FLUSH_SIZE = positive_int(env, "BUFFER_FLUSH_SIZE", 1000)
BUFFER_FLUSH_INTERVAL = positive_int(env, "BUFFER_FLUSH_INTERVAL", 30)
# Seconds GET /stats answers from a cached computation (it scans both tables); 0 turns caching off.
STATS_CACHE_SECONDS = env.int("STATS_CACHE_SECONDS", default=5)
BUFFER_CAPACITY = positive_int(env, "BUFFER_CAPACITY", 200_000)
# Bytes of buffered record data (the validated JSON) above which writes get 503 BUFFER_FULL too, so
# a stream of large records (100,000-character texts) cannot exhaust the buffer store's memory.
BUFFER_CAPACITY_BYTES = positive_int(env, "BUFFER_CAPACITY_BYTES", 512 * 1024 * 1024)
# Seconds a deleted session stays remembered by the buffer, so a task write that checked the session
# just before the delete cannot be buffered after it (it gets SESSION_NOT_FOUND instead). Longer than
# any request can take between its check and its write.
BUFFER_TOMBSTONE_TTL = positive_int(env, "BUFFER_TOMBSTONE_TTL", 600)
# A record that fails alone with an error the flusher cannot classify is retried this many flushes,
# then moved to the dead letters, so an unknown error can never block flushing for good.
FLUSH_MAX_ATTEMPTS = positive_int(env, "FLUSH_MAX_ATTEMPTS", 5)
RETENTION_COMPLETED_DAYS = positive_int(env, "RETENTION_COMPLETED_DAYS", 90)
RETENTION_FAILED_DAYS = positive_int(env, "RETENTION_FAILED_DAYS", 30)
# Expiry of a collection's flush lock. The flusher renews it after every chunk (<= 1000 records,
# well under a second), so it only has to outlast one chunk; a flusher that died frees the
# collection after this many seconds.
BUFFER_LOCK_TTL = positive_int(env, "BUFFER_LOCK_TTL", 60)
# Shards of each buffered collection's buffer (by a hash of the session id, so a session and its
# tasks share one): each has its own flush lock, so up to this many flushers (Celery worker
# processes) write concurrently. 1 keeps the single-flusher layout. Change it only with the buffer
# drained (``manage.py flush_buffer`` with writes stopped): check storage_backends.W002 warns otherwise.
BUFFER_SHARDS = positive_int(env, "BUFFER_SHARDS", 1)
if BUFFER_SHARDS > 64:
    raise ImproperlyConfigured(f"BUFFER_SHARDS must be at most 64 (got {BUFFER_SHARDS})")
# Every buffer key starts with this; the {buffer} hash tag keeps them in one Redis Cluster slot.
BUFFER_KEY_PREFIX = env.str("BUFFER_KEY_PREFIX", default="persistence:{buffer}")

# --- Storage backends ----------------------------------------------------------------------------
# Which backend stores each collection: the dotted path of a storage_backends.base.StorageBackend,
# or {"BACKEND": path, "OPTIONS": {...}} (the class's keyword arguments; e.g. the SQL plugin's
# {"database": "<DATABASES alias>"}). docs/architecture.md "Routing with options".
STORAGE_BACKENDS = {
    "translation_sessions": env.str("STORAGE_BACKEND_SESSIONS", default="storage_backends.sql.SQLBackend"),
    "translation_tasks": env.str("STORAGE_BACKEND_TASKS", default="storage_backends.sql.SQLBackend"),
    "user_sessions": env.str(
        "STORAGE_BACKEND_USER_SESSIONS",
        default="storage_backends.redis_sessions.RedisUserSessions"
        if REDIS_URL
        else "storage_backends.db_sessions.DatabaseUserSessions",
    ),
    # Audit events (docs/api.md §9): an AuditSearchBackend (storage_backends.search). The SQL one stores
    # them in the database with its full-text index; search_opensearch.OpenSearchAuditSearch in
    # OpenSearch/Elasticsearch (AUDIT_SEARCH_URL).
    "audit_logs": env.str("STORAGE_BACKEND_AUDIT_LOGS", default="storage_backends.search_sql.SQLAuditSearch"),
}
# Audit events older than this many days are dropped, whole calendar months at a time (UTC): a
# month goes once its last day is older than this.
AUDIT_RETENTION_DAYS = positive_int(env, "AUDIT_RETENTION_DAYS", 365)

# --- Files (object storage, docs/api.md §7) -------------------------------------------------------------
# Bytes in an object store (storage_backends.object_store), metadata in the database (files app).
# FILES_BACKEND: "local" (a directory, the embedded default) or "s3" (any S3-compatible service).
FILES_BACKEND = env.str("FILES_BACKEND", default="local")
FILES_ROOT = env.str("FILES_ROOT", default=str(BASE_DIR / "data" / "files"))
FILES_KEY_PREFIX = env.str("FILES_KEY_PREFIX", default="files/")
FILES_S3_ENDPOINT_URL = env.str("FILES_S3_ENDPOINT_URL", default="") or None
# The address clients reach the store at, when it differs (presigned URLs are signed for it).
FILES_S3_PUBLIC_ENDPOINT_URL = env.str("FILES_S3_PUBLIC_ENDPOINT_URL", default="") or None
FILES_S3_BUCKET = env.str("FILES_S3_BUCKET", default="")
FILES_S3_REGION = env.str("FILES_S3_REGION", default="us-east-1")
FILES_S3_ACCESS_KEY_ID = env.str("FILES_S3_ACCESS_KEY_ID", default="") or None
FILES_S3_SECRET_ACCESS_KEY = env.str("FILES_S3_SECRET_ACCESS_KEY", default="") or None
FILES_S3_ADDRESSING_STYLE = env.str("FILES_S3_ADDRESSING_STYLE", default="auto")
FILES_MAX_UPLOAD_BYTES = positive_int(env, "FILES_MAX_UPLOAD_BYTES", 1024 * 1024 * 1024)
FILES_URL_TTL = positive_int(env, "FILES_URL_TTL", 300)
FILES_PENDING_TTL = positive_int(env, "FILES_PENDING_TTL", 3600)
# Objects without metadata younger than this are uploads in flight, not orphans.
FILES_ORPHAN_GRACE = positive_int(env, "FILES_ORPHAN_GRACE", 3600)
FILES_CLEANUP_INTERVAL = positive_int(env, "FILES_CLEANUP_INTERVAL", 600)
# --- Audit search on OpenSearch/Elasticsearch (storage_backends.search_opensearch) ------------------
# Used when STORAGE_BACKENDS["audit_logs"] names storage_backends.search_opensearch.OpenSearchAuditSearch.
# Monthly indices <prefix>-YYYY.MM behind the alias <prefix>, made from one index template <prefix>.
AUDIT_SEARCH_URL = env.str("AUDIT_SEARCH_URL", default="")
AUDIT_SEARCH_INDEX_PREFIX = env.str("AUDIT_SEARCH_INDEX_PREFIX", default="audit")
AUDIT_SEARCH_USERNAME = env.str("AUDIT_SEARCH_USERNAME", default="") or None
AUDIT_SEARCH_PASSWORD = env.str("AUDIT_SEARCH_PASSWORD", default="") or None
AUDIT_SEARCH_VERIFY_CERTS = env.bool("AUDIT_SEARCH_VERIFY_CERTS", default=True)
AUDIT_SEARCH_CA_CERTS = env.str("AUDIT_SEARCH_CA_CERTS", default="") or None
# Seconds: searches and everything else; one bulk request; the health probe (/health stays fast).
AUDIT_SEARCH_TIMEOUT = positive_int(env, "AUDIT_SEARCH_TIMEOUT", 10)
AUDIT_SEARCH_BULK_TIMEOUT = positive_int(env, "AUDIT_SEARCH_BULK_TIMEOUT", 60)
AUDIT_SEARCH_HEALTH_TIMEOUT = positive_int(env, "AUDIT_SEARCH_HEALTH_TIMEOUT", 2)
# Refresh after a bulk write: "false" (default: events become searchable within the index refresh
# interval, 1 s, and bulk stays fast), "wait_for" (the flush waits until they are searchable) or "true".
AUDIT_SEARCH_REFRESH = choice(env, "AUDIT_SEARCH_REFRESH", ("false", "wait_for", "true"), "false")

# --- Users and user sessions (docs/api.md §8) -----------------------------------------------------------
# User sessions live in Redis (storage_backends.redis_sessions) in their own database or key prefix,
# on a Redis whose maxmemory-policy never evicts (noeviction/volatile-*: a session must only end by
# its TTL; checked at start-up, storage_backends.W002). Without REDIS_URL (embedded mode) they live
# in a database table (storage_backends.db_sessions).
USER_SESSIONS_REDIS_URL = env.str("USER_SESSIONS_REDIS_URL", default="") or REDIS_URL
USER_SESSIONS_KEY_PREFIX = env.str("USER_SESSIONS_KEY_PREFIX", default="persistence:{usersessions}")
USER_SESSION_TTL = positive_int(env, "USER_SESSION_TTL", 86_400)
# The contract's bounds of ttl_seconds (60 s - 30 days); the tests lower the minimum to 1 s.
USER_SESSION_MIN_TTL = positive_int(env, "USER_SESSION_MIN_TTL", 60)
USER_SESSION_MAX_TTL = positive_int(env, "USER_SESSION_MAX_TTL", 30 * 86_400)
USER_SESSIONS_PER_USER = positive_int(env, "USER_SESSIONS_PER_USER", 100)
# Two-level read cache of user reads (storage_backends.read_cache): level 1 in each process (at most
# 10 s), level 2 in Redis (at most 60 s, jittered). Both are checked against a version in Redis on
# every hit, so they never answer a state older than an acknowledged write.
READ_CACHE_ENABLED = env.bool("READ_CACHE_ENABLED", default=True)
READ_CACHE_L1_SECONDS = min(positive_int(env, "READ_CACHE_L1_SECONDS", 10), 10)
READ_CACHE_L2_SECONDS = min(positive_int(env, "READ_CACHE_L2_SECONDS", 60), 60)
READ_CACHE_L1_MAX_ENTRIES = positive_int(env, "READ_CACHE_L1_MAX_ENTRIES", 10_000)
READ_CACHE_KEY_PREFIX = env.str("READ_CACHE_KEY_PREFIX", default="persistence:{readcache}")

# --- Celery ------------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Longer than the longest flush, so the broker never hands a running flush to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "UTC"
# A web request enqueueing a size-triggered flush must not hang on a broker outage: the records are
# already safe in Redis and the periodic flush takes them.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BEAT_SCHEDULE = {
    "flush-buffer": {"task": "storage_backends.tasks.flush_buffer", "schedule": float(BUFFER_FLUSH_INTERVAL)},
}
# Retention cleanup once a day, at a quiet hour (UTC); the days come from RETENTION_*_DAYS.
CELERY_BEAT_SCHEDULE.update(
    {
        "cleanup-expired-sessions": {
            "task": "translation.tasks.cleanup_expired_sessions",
            "schedule": crontab(hour=3, minute=17),
        }
    }
)

# Audit events past AUDIT_RETENTION_DAYS, whole months (audit.services.audit_retention_apply).
CELERY_BEAT_SCHEDULE["cleanup-audit-logs"] = {
    "task": "audit.tasks.cleanup_audit_logs",
    "schedule": crontab(hour=3, minute=41),
}

# Expired files, stale pending uploads and orphan objects (files.services.files_cleanup).
CELERY_BEAT_SCHEDULE["cleanup-files"] = {
    "task": "files.tasks.cleanup_files",
    "schedule": float(FILES_CLEANUP_INTERVAL),
}

# --- Cache (rate-limit counters) ----------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/cache/
# Redis, so that every web process counts against the same limits; local memory in the embedded
# mode (one process). Short socket timeouts: the throttles let requests through when it is down.
CACHE_URL = env.str("CACHE_URL", default="") or REDIS_URL
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "persistence:cache",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- API ---------------------------------------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/
# API keys (api_keys app): the X-API-Key header on every /api/v1/ request. Turning them off is for
# local development only; production settings refuse it.
API_AUTH_ENABLED = env.bool("API_AUTH_ENABLED", default=True)
API_KEY_CUSTOM_HEADER = "HTTP_X_API_KEY"
# The admin shows a new key once, in a message; kept in the session (server side) rather than in
# the default signed-but-readable cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
# Token validation and user reads served by plain views through a trimmed handler (core.lean,
# users.api.lean): the same answers for a fraction of the CPU. false sends them through DRF too.
LEAN_ROUTES_ENABLED = env.bool("LEAN_ROUTES_ENABLED", default=True)
# Rate limits ("N/s", "N/min", "N/hour", "N/day"; "off" disables one). Per key: 100 requests a
# second sustained, far above what the translation client sends (a batch of up to 1000 records
# every few hundred milliseconds per job) and above what one instance can store (100 batches of
# 1000 records a second). Per client IP: every request from one address, keyed or not, so several
# keys on one host share a ceiling; the fault suite's load reaches ~250 requests/s from one address.
THROTTLE_RATE_KEY = env.str("THROTTLE_RATE_KEY", default="6000/min")
THROTTLE_RATE_IP = env.str("THROTTLE_RATE_IP", default="30000/min")
# Failed authentications (wrong, revoked or expired key) per client IP: a client with a stale key
# fails a few times a minute; a guesser is stopped after this many, without a database lookup each.
THROTTLE_RATE_AUTH_FAILURES = env.str("THROTTLE_RATE_AUTH_FAILURES", default="120/min")
# Seconds a verified API key is trusted from a process's memory before it is looked up again: a
# revoked or deleted key keeps working for at most this long. 0 looks every request up.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=5)
# How many proxies in front of the service append to X-Forwarded-For (the client address for the
# per-IP limit). 0: use the socket's address, so a client cannot pick its own by sending the header.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["core.json_codec.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "core.json_codec.ORJSONParser",
        "core.json_codec.AnyContentJSONParser",
    ],
    # DRF's negotiation, with a shortcut for Accept: */* (persistence_site/negotiation.py).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.negotiation.ContentNegotiation",
    "DEFAULT_AUTHENTICATION_CLASSES": ["api_keys.authentication.APIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api_keys.permissions.HasScope"],
    # Every limit is checked by the authentication, before the key lookup, in one Redis round trip
    # (core.throttling), so DRF's own throttles are not used.
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": THROTTLE_RATE_KEY,
        "client_ip": THROTTLE_RATE_IP,
        "auth_failure": THROTTLE_RATE_AUTH_FAILURES,
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Persistence Service API",
    "DESCRIPTION": "Durable, fast, batched persistence for translation sessions and tasks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The document and its UIs are public (a browser cannot send X-API-Key); the API is not.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # 3.1: the write endpoints' request bodies come from pydantic, whose JSON Schema uses 3.1 forms.
    "OAS_VERSION": "3.1.0",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api_keys.schema.document_auth",  # the scope and 401/403/429 of every /api/v1/ operation
    ],
}
# Session and task statuses appear in many answers: one named enum each instead of name collisions.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "SessionStatusEnum": ["pending", "processing", "completed", "failed", "cancelled"],
    "TaskStatusEnum": ["pending", "processing", "completed", "failed"],
    "UserStatusEnum": ["active", "disabled"],
    "HealthStateEnum": ["healthy", "unhealthy"],
    "AcceptedStatusEnum": ["accepted"],  # the 202 of every batch endpoint (translation, audit)
}

# --- Metrics -------------------------------------------------------------------------------------
# https://prometheus.github.io/client_python/multiprocess/
# GET /api/v1/system/metrics needs any valid key unless METRICS_PUBLIC opens it (for a scrape
# network that cannot send headers). With several processes prometheus_client's multiprocess mode
# keeps values in PROMETHEUS_MULTIPROC_DIR (gunicorn_conf.py sets and wipes it); the directory
# must exist before the first metric is made, which happens while apps load, after this file.
METRICS_PUBLIC = env.bool("METRICS_PUBLIC", default=False)
# From the process environment, not the YAML file: prometheus_client reads only the environment.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

# --- Logging -----------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/logging/
LOG_LEVEL = choice(env, "LOG_LEVEL", LOG_LEVELS, "INFO")
LOG_FORMAT = choice(env, "LOG_FORMAT", LOG_FORMATS, "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "core.logging_setup.RequestContextFilter"}},
    "formatters": {
        "json": {
            "()": "core.logging_setup.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "console": {
            "format": "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "default": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        },
    },
    "root": {"handlers": ["default"], "level": LOG_LEVEL},
    "loggers": {
        # The access log below replaces Django's own request lines.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}
