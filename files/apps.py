"""The files app (docs/api.md §7): metadata of uploaded files; the bytes live in the object store.

Dependencies go one way: files imports translation (a file's session must exist) and registers
itself on translation's session-delete hook here, so translation never imports files.
"""

from django.apps import AppConfig
from django.http import multipartparser

#: Bytes a multipart part's headers may take: a 255-character filename percent-encoded in 4-byte
#: characters (255 x 12 bytes) plus the rest of its Content-Disposition and Content-Type.
MULTIPART_HEADER_BYTES = 4096


class FilesConfig(AppConfig):
    name = "files"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from files import metrics
        from files.services import files_delete_for_sessions
        from translation.services import lifecycle

        metrics.initialise()
        # Django caps a multipart part's headers at 1024 bytes, and the filename travels in them: a
        # 255-character name of 4-byte characters (or percent-encoded in filename*) needs more, and
        # the contract allows it. Django reads this module constant at each parse.
        multipartparser.MAX_TOTAL_HEADER_SIZE = max(
            multipartparser.MAX_TOTAL_HEADER_SIZE, MULTIPART_HEADER_BYTES
        )
        if files_delete_for_sessions not in lifecycle.SESSION_DELETE_HOOKS:
            lifecycle.SESSION_DELETE_HOOKS.append(files_delete_for_sessions)
