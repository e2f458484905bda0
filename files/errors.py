"""Domain errors of the files app, in the contract's error shape (core.errors)."""

from __future__ import annotations

from rest_framework import status

from core.errors import ServiceError
from core.exceptions import StorageUnavailable


class UploadIncomplete(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    error_code = "UPLOAD_INCOMPLETE"
    default_detail = "The file's bytes are not (completely) stored."


class ObjectStoreUnavailable(StorageUnavailable):
    default_detail = "The object store is unavailable; retry later."
