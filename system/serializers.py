"""Output serializers of the system endpoints (they document the answers in the OpenAPI schema)."""

from __future__ import annotations

from rest_framework import serializers


class DatabaseOut(serializers.Serializer):
    engine = serializers.CharField(help_text="mysql or sqlite3.")
    name = serializers.CharField()
    host = serializers.CharField(allow_null=True)
    port = serializers.IntegerField(allow_null=True)


class BufferConfigOut(serializers.Serializer):
    store = serializers.ChoiceField(choices=["redis", "memory"])
    url = serializers.CharField(allow_null=True, help_text="The buffer store's URL, password masked.")
    flush_size = serializers.IntegerField(help_text="Buffered records that trigger a flush.")
    flush_interval_seconds = serializers.IntegerField()
    capacity = serializers.IntegerField(
        help_text="Above this many buffered records writes get 503 BUFFER_FULL."
    )
    lock_ttl_seconds = serializers.IntegerField(allow_null=True)


class RetentionOut(serializers.Serializer):
    completed_days = serializers.IntegerField()
    failed_days = serializers.IntegerField()


class StorageBackendOut(serializers.Serializer):
    name = serializers.CharField()
    path = serializers.CharField(help_text="Dotted path of the backend class (STORAGE_BACKENDS).")
    collections = serializers.ListField(child=serializers.CharField())
    options = serializers.DictField(
        required=False, help_text="The backend's OPTIONS in STORAGE_BACKENDS (absent when none)."
    )


class StorageOut(serializers.Serializer):
    backends = StorageBackendOut(many=True)
    collections = serializers.DictField(child=serializers.CharField(), help_text="collection -> backend name")


class CeleryOut(serializers.Serializer):
    broker_url = serializers.CharField(allow_null=True, help_text="Password masked.")


class ApiConfigOut(serializers.Serializer):
    auth_enabled = serializers.BooleanField()
    auth_header = serializers.CharField()
    throttle_rates = serializers.DictField(child=serializers.CharField(allow_null=True))
    trusted_proxy_count = serializers.IntegerField(allow_null=True)
    metrics_public = serializers.BooleanField()
    request_max_body_bytes = serializers.IntegerField()


class LoggingOut(serializers.Serializer):
    level = serializers.CharField()
    format = serializers.CharField()


class FilesConfigOut(serializers.Serializer):
    backend = serializers.CharField(help_text="FILES_BACKEND: local or s3.")
    root = serializers.CharField(allow_null=True, help_text="FILES_ROOT (local store only).")
    s3_endpoint_url = serializers.CharField(allow_null=True, help_text="Password masked; null: AWS.")
    s3_bucket = serializers.CharField(allow_null=True)
    max_upload_bytes = serializers.IntegerField()
    url_ttl_seconds = serializers.IntegerField()
    pending_ttl_seconds = serializers.IntegerField()


class ConfigOut(serializers.Serializer):
    version = serializers.CharField()
    settings_module = serializers.CharField()
    debug = serializers.BooleanField()
    database = DatabaseOut()
    buffer = BufferConfigOut()
    retention = RetentionOut()
    storage = StorageOut()
    files = FilesConfigOut()
    celery = CeleryOut()
    api = ApiConfigOut()
    logging = LoggingOut()
