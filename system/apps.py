from django.apps import AppConfig


class SystemConfig(AppConfig):
    name = "system"
    verbose_name = "System: metrics and configuration"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every process (each gunicorn worker, each Celery process) shows the storage series of
        # the configured backends at zero from start-up, before the first operation.
        from core.metrics import initialise_backend_labels
        from system.selectors import storage_backend_names

        initialise_backend_labels(storage_backend_names())
        # The last app: every collection is declared by now, so the routing table can be checked.
        from django.conf import settings

        from storage_backends.registry import validate_routes

        validate_routes(getattr(settings, "STORAGE_BACKENDS", {}))
        from system import checks  # noqa: F401  (registers the deployment checks)
