"""The translation app: sessions (one per spreadsheet file) and their tasks (one per cell)."""

from django.apps import AppConfig


class TranslationConfig(AppConfig):
    name = "translation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from translation.collections import declare_collections

        declare_collections()
