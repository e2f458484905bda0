"""The translation app: sessions (one per spreadsheet file) and their tasks (one per cell)."""

from django.apps import AppConfig


class TranslationConfig(AppConfig):
    name = "translation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from storage_backends.catalog import Collection, declare

        declare(
            Collection(
                "translation_sessions",
                model="translation.Session",
                id_field="session_id",
                item_type="session",
            )
        )
        declare(
            Collection(
                "translation_tasks",
                model="translation.Task",
                id_field="task_id",
                item_type="task",
                parent="translation_sessions",
                parent_field="session_id",
            )
        )
