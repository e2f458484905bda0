"""The files app (API.md §7): metadata of uploaded files; the bytes live in the object store.

Dependencies go one way: files imports translation (a file's session must exist) and registers
itself on translation's session-delete hook here, so translation never imports files.
"""

from django.apps import AppConfig


class FilesConfig(AppConfig):
    name = "files"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from files import metrics
        from files.services import files_delete_for_sessions
        from translation.services import lifecycle

        metrics.initialise()
        if files_delete_for_sessions not in lifecycle.SESSION_DELETE_HOOKS:
            lifecycle.SESSION_DELETE_HOOKS.append(files_delete_for_sessions)
