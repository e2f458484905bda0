"""Streaming multipart uploads: the ``file`` part goes to the object store chunk by chunk.

Django's upload handlers see each chunk of a part as it is parsed (64 KiB); this one writes it to
the store's writer while hashing it, so a worker's memory stays flat (one S3 part of 8 MiB at most)
whatever the size. Bytes beyond ``limit`` abort the object and raise 413.

    handler = StreamingUploadHandler(store, key, limit)
    request.upload_handlers = [handler]
    request.FILES                              # parses; handler.result is set when "file" came
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from core.errors import PayloadTooLarge
from storage_backends.object_store import ObjectStore, ObjectStoreError, ObjectWriter

FIELD = "file"


@dataclass
class StoredUpload:
    filename: str
    content_type: str
    size: int
    sha256: str


class HashingWriter:
    """Wraps an ``ObjectWriter``: counts what goes through, ``limit`` bounds the size; ``close()``
    stores the object and sets ``sha256``, the writer's own digest when it hashes what it stores
    (``ObjectWriter.hashes``: the bytes are hashed once), else the one computed here."""

    def __init__(self, writer: ObjectWriter, limit: int) -> None:
        self.writer, self.limit = writer, limit
        self.size = 0
        self.sha256 = ""
        self._digest = None if writer.hashes else hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.writer.abort()
            raise PayloadTooLarge(f"The file is larger than the limit of {self.limit} bytes.")
        if self._digest is not None:
            self._digest.update(chunk)
        self.writer.write(chunk)

    def close(self) -> None:
        stored = self.writer.close()
        if self._digest is not None:
            self.sha256 = self._digest.hexdigest()
        elif stored is None:
            raise ObjectStoreError("the object store's writer returned no sha256")
        else:
            self.sha256 = stored


class StreamingUploadHandler(FileUploadHandler):
    """Stores the first ``file`` part under ``key``; every other file part is discarded."""

    chunk_size = 1024 * 1024  # Django reads and scans the body this much at a time

    def __init__(self, store: ObjectStore, key: str, limit: int) -> None:
        super().__init__()
        self.store, self.key, self.limit = store, key, limit
        self.result: StoredUpload | None = None
        self._target: HashingWriter | None = None
        self._meta: tuple[str, str] | None = None

    def new_file(self, field_name: str, file_name: str, content_type: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, content_type, *args, **kwargs)
        if field_name == FIELD and self.result is None and self._target is None:
            self._meta = (file_name, content_type or "application/octet-stream")
            self._target = HashingWriter(self.store.writer(self.key, content_type=self._meta[1]), self.limit)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if self._target is not None and self.result is None:
            try:
                self._target.write(raw_data)
            except ObjectStoreError:
                self._target.writer.abort()
                raise
        return None

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if self._target is None or self.result is not None or self._meta is None:
            return None
        try:
            self._target.close()
        except ObjectStoreError:
            self._target.writer.abort()
            raise
        self.result = StoredUpload(self._meta[0], self._meta[1], self._target.size, self._target.sha256)
        return None

    def abort(self) -> None:
        """Leave nothing behind when parsing failed before ``file_complete``."""
        if self._target is not None and self.result is None:
            self._target.writer.abort()
