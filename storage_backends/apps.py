from django.apps import AppConfig


class StorageBackendsConfig(AppConfig):
    name = "storage_backends"
    default_auto_field = "django.db.models.BigAutoField"
