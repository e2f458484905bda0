from django.apps import AppConfig


class StorageBackendsConfig(AppConfig):
    name = "storage_backends"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from storage_backends import checks  # noqa: F401  (registers the system checks)
