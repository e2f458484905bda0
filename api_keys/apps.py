from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    name = "api_keys"
    verbose_name = "API keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the X-API-Key security scheme with drf-spectacular.
        from api_keys import schema  # noqa: F401
