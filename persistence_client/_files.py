"""What the sync and async clients share for files (docs/api.md §7): sources, sizes, digests.

Small files go up as one multipart POST, streamed from the file object (httpx reads it in
chunks); files above ``direct_threshold`` bytes go straight to the object store: ``upload-url``,
a PUT of the bytes to the URL it answers (never with the API key), then ``complete``.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

FILES = "/api/v1/storage/files"
#: Above this many bytes ``upload_file`` uses a direct (presigned) upload.
DIRECT_THRESHOLD = 64 * 1024 * 1024
CHUNK = 1024 * 1024

Source = str | os.PathLike[str] | IO[bytes]


@contextmanager
def opened(source: Source) -> Iterator[tuple[IO[bytes], str | None]]:
    """A binary file object for ``source`` (opened and closed here for a path) and its name."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        with path.open("rb") as handle:
            yield handle, path.name
    else:
        name = getattr(source, "name", None)
        yield source, Path(name).name if isinstance(name, str) else None


def remaining_size(handle: IO[bytes]) -> int:
    """Bytes from the current position to the end (the position is kept)."""
    start = handle.tell()
    end = handle.seek(0, os.SEEK_END)
    handle.seek(start)
    return end - start


def sha256_of(handle: IO[bytes]) -> str:
    start = handle.tell()
    digest = hashlib.sha256()
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
    handle.seek(start)
    return digest.hexdigest()


def chunks(handle: IO[bytes], size: int) -> Iterator[bytes]:
    remaining = size
    while remaining > 0:
        chunk = handle.read(min(CHUNK, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


def guess_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def form_fields(
    *, kind: str | None, session_id: str | None, metadata: Mapping[str, Any] | None, expires_in: int | None
) -> dict[str, str]:
    fields: dict[str, str] = {}
    if kind is not None:
        fields["kind"] = kind
    if session_id is not None:
        fields["session_id"] = session_id
    if metadata is not None:
        fields["metadata"] = json.dumps(dict(metadata), ensure_ascii=False)
    if expires_in is not None:
        fields["expires_in"] = str(expires_in)
    return fields


def multipart_header() -> dict[str, str]:
    """The Content-Type of a multipart body with a fresh boundary (httpx takes the boundary from it)."""
    return {"Content-Type": f"multipart/form-data; boundary={os.urandom(16).hex()}"}
