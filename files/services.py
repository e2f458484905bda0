"""Writes of the files app: upload, direct upload (upload-url + complete), delete, cleanup.

Order of writes: bytes first, then the row (a crash between them leaves an orphan object for the
sweep, never a row pointing at nothing). Deletes go bytes first too, then rows; files of deleted
sessions are hidden at once (``expires_at`` set to now) and then removed the same way, so a store
outage leaves them to the sweep.

    row = file_create(stored=..., fields=..., file_id=..., key=...)
    row, upload = file_upload_url_create(fields=...)
    row = file_complete(file_id="...")
    file_delete(file_id="...")
    counts = files_cleanup()
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from audit.services import audited
from core.errors import NotFound, SessionNotFound
from files import metrics
from files.errors import ObjectStoreUnavailable, UploadIncomplete
from files.models import File, FileStatus
from files.selectors import file_get, visible
from files.uploads import StoredUpload
from storage_backends.object_store import ObjectStore, ObjectStoreError, get_object_store

logger = logging.getLogger(__name__)

#: Files deleted per round of the sweep (one DeleteObjects call and one DELETE statement).
CLEANUP_CHUNK = 500
_SIGNER_SALT = "files.url"


@dataclass
class FileFields:
    """Validated client fields of an upload (files.validation)."""

    filename: str = ""
    content_type: str = "application/octet-stream"
    kind: str = "other"
    session_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    expires_in: int | None = None
    size: int | None = None
    sha256: str | None = None


def new_file_id() -> str:
    return str(uuid.uuid4())


def object_key(file_id: str) -> str:
    """Keys are the service's own UUIDs under ``FILES_KEY_PREFIX``: no client name ever reaches them."""
    return f"{settings.FILES_KEY_PREFIX}{file_id}"


def _store() -> ObjectStore:
    return get_object_store()


def check_session(session_id: str | None) -> None:
    """422 SESSION_NOT_FOUND unless the session exists (stored or buffered)."""
    if session_id is None:
        return
    from translation.selectors import session_row_get

    if session_row_get(session_id=session_id) is None:
        raise SessionNotFound(
            "The session does not exist.",
            errors=[{"field": "session_id", "message": "no such session"}],
            extra={"session_id": session_id},
        )


def _expires_at(expires_in: int | None) -> dt.datetime | None:
    return None if expires_in is None else timezone.now() + dt.timedelta(seconds=expires_in)


def _remove_objects(store: ObjectStore, keys: list[str], operation: str) -> None:
    try:
        store.delete_objects(keys)
    except ObjectStoreError as exc:
        metrics.ERRORS.labels(backend=store.name, operation=operation).inc()
        raise ObjectStoreUnavailable(str(exc)) from exc


def file_create(*, stored: StoredUpload, fields: FileFields, file_id: str, key: str) -> File:
    """The row of an upload whose bytes are stored. If the session vanished meanwhile (deleted
    between the check and this insert), the file is removed again and the upload refused."""
    store = _store()
    row = File.objects.create(
        file_id=file_id,
        filename=fields.filename or stored.filename,
        content_type=stored.content_type,
        size=stored.size,
        sha256=stored.sha256,
        status=FileStatus.AVAILABLE,
        kind=fields.kind,
        session_id=fields.session_id,
        metadata=fields.metadata,
        backend=store.name,
        object_key=key,
        expires_at=_expires_at(fields.expires_in),
    )
    _recheck_session(row, store)
    metrics.UPLOADS.labels(backend=store.name).inc()
    metrics.UPLOADED_BYTES.labels(backend=store.name).inc(stored.size)
    return row


def _recheck_session(row: File, store: ObjectStore) -> None:
    if row.session_id is None:
        return
    try:
        check_session(row.session_id)
    except SessionNotFound:
        _remove_objects(store, [row.object_key], "upload")
        row.delete()
        raise


def file_upload_url_create(*, fields: FileFields) -> tuple[File, dict[str, Any]]:
    """A pending row and where to send the bytes: a presigned PUT on ``s3``, the service's own
    signed PUT URL on ``local`` (built by the caller from ``upload_token``)."""
    check_session(fields.session_id)
    store = _store()
    file_id = new_file_id()
    row = File.objects.create(
        file_id=file_id,
        filename=fields.filename,
        content_type=fields.content_type,
        size=0,
        status=FileStatus.PENDING,
        kind=fields.kind,
        session_id=fields.session_id,
        metadata=fields.metadata,
        backend=store.name,
        object_key=object_key(file_id),
        declared_size=fields.size,
        declared_sha256=fields.sha256 or "",
        expires_at=_expires_at(fields.expires_in),
    )
    ttl = settings.FILES_URL_TTL
    expires = timezone.now() + dt.timedelta(seconds=ttl)
    if store.direct:
        try:
            upload = store.upload_target(
                row.object_key, content_type=row.content_type, size=fields.size or 0, ttl=ttl
            )
        except ObjectStoreError as exc:
            row.delete()
            raise ObjectStoreUnavailable(str(exc)) from exc
    else:
        upload = {
            "method": "PUT",
            "url": None,
            "headers": {"Content-Type": row.content_type, "Content-Length": str(fields.size or 0)},
        }
    upload["expires_at"] = expires
    return row, upload


def _stored_digest(store: ObjectStore, key: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    for chunk in store.read_chunks(key):
        digest.update(chunk)
    return digest.hexdigest()


def file_complete(*, file_id: str) -> File:
    """Check a direct upload's object (exists, declared size, declared sha256) and make the file
    available, with the size and sha256 measured from the stored bytes; 409 naming what is wrong."""
    with audited("file.upload", resource_type="file", resource_id=file_id, details={"via": "upload_url"}):
        row = file_get(file_id=file_id)
        if row.status == FileStatus.AVAILABLE:
            return row
        store = _store()
        try:
            info = store.stat(row.object_key)
            if info is None:
                raise UploadIncomplete("No bytes were uploaded for this file.", extra={"file_id": file_id})
            if row.declared_size is not None and info.size != row.declared_size:
                raise UploadIncomplete(
                    f"The stored object has {info.size} bytes; {row.declared_size} were declared.",
                    extra={"file_id": file_id, "size": info.size, "declared_size": row.declared_size},
                )
            digest = _stored_digest(store, row.object_key)
        except ObjectStoreError as exc:
            metrics.ERRORS.labels(backend=store.name, operation="complete").inc()
            raise ObjectStoreUnavailable(str(exc)) from exc
        if row.declared_sha256 and digest != row.declared_sha256:
            raise UploadIncomplete(
                "The stored object's sha256 differs from the declared one.",
                extra={"file_id": file_id, "sha256": digest, "declared_sha256": row.declared_sha256},
            )
        row.size, row.sha256, row.status = info.size, digest, FileStatus.AVAILABLE
        row.save(update_fields=["size", "sha256", "status", "updated_at"])
        metrics.UPLOADS.labels(backend=store.name).inc()
        metrics.UPLOADED_BYTES.labels(backend=store.name).inc(info.size)
        return row


def file_delete(*, file_id: str) -> None:
    """Bytes, then the row. NotFound when unknown or expired; 503 when the store fails (kept)."""
    with audited("file.delete", resource_type="file", resource_id=file_id):
        row = file_get(file_id=file_id)
        store = _store()
        _remove_objects(store, [row.object_key], "delete")
        row.delete()
        metrics.DELETED.labels(backend=store.name).inc()


def files_delete_for_sessions(session_ids: list[str]) -> None:
    """Session-delete hook (translation.services.lifecycle.SESSION_DELETE_HOOKS): hide the
    sessions' files at once, then remove them; on a store failure the sweep finishes the job."""
    now = timezone.now()
    hidden = 0
    for start in range(0, len(session_ids), 500):
        hidden += (
            File.objects.filter(session_id__in=session_ids[start : start + 500])
            .filter(visible(now))
            .update(expires_at=now)
        )
    if not hidden:
        return
    for start in range(0, len(session_ids), 500):
        query = File.objects.filter(session_id__in=session_ids[start : start + 500], backend=_store().name)
        try:
            files_delete(query)
        except ObjectStoreUnavailable:
            logger.warning("files of deleted sessions left to the sweep", exc_info=True)
            return


def files_delete(query: Any, limit: int | None = None) -> int:
    """Delete the matching files in chunks of ``CLEANUP_CHUNK``, bytes first; returns how many."""
    store = _store()
    deleted = 0
    while limit is None or deleted < limit:
        rows = list(query.order_by("pk").values_list("pk", "object_key")[:CLEANUP_CHUNK])
        if not rows:
            break
        _remove_objects(store, [key for _, key in rows], "cleanup")
        with transaction.atomic():
            deleted += File.objects.filter(pk__in=[pk for pk, _ in rows]).delete()[0]
        metrics.DELETED.labels(backend=store.name).inc(len(rows))
        if len(rows) < CLEANUP_CHUNK:
            break
    return deleted


def _orphans(store: ObjectStore, older_than: dt.datetime) -> Iterator[list[str]]:
    """Chunks of stored keys with no row, last modified before ``older_than``."""
    batch: list[str] = []

    def without_rows(keys: list[str]) -> list[str]:
        known = set(File.objects.filter(object_key__in=keys).values_list("object_key", flat=True))
        return [key for key in keys if key not in known]

    for key, info in store.iter_objects(settings.FILES_KEY_PREFIX):
        if info.modified < older_than:
            batch.append(key)
        if len(batch) >= CLEANUP_CHUNK:
            yield without_rows(batch)
            batch = []
    if batch:
        yield without_rows(batch)


def files_cleanup(*, now: dt.datetime | None = None, dry_run: bool = False) -> dict[str, int]:
    """Delete expired files, pending uploads older than ``FILES_PENDING_TTL`` and orphan objects
    (bytes without a row, older than ``FILES_ORPHAN_GRACE``), bytes first, in chunks."""
    now = now or timezone.now()
    store = _store()
    expired = File.objects.filter(backend=store.name, expires_at__lte=now)
    stale = File.objects.filter(
        backend=store.name,
        status=FileStatus.PENDING,
        created_at__lt=now - dt.timedelta(seconds=settings.FILES_PENDING_TTL),
    )
    grace = now - dt.timedelta(seconds=settings.FILES_ORPHAN_GRACE)
    if dry_run:
        orphans = sum(len(chunk) for chunk in _orphans(store, grace))
        return {"expired": expired.count(), "pending": stale.count(), "orphans": orphans, "incomplete": 0}
    counts = {"expired": files_delete(expired), "pending": files_delete(stale)}
    orphans = 0
    try:
        for chunk in _orphans(store, grace):
            if chunk:
                store.delete_objects(chunk)
                orphans += len(chunk)
        counts["incomplete"] = store.sweep_incomplete(grace)
    except ObjectStoreError as exc:
        metrics.ERRORS.labels(backend=store.name, operation="cleanup").inc()
        raise ObjectStoreUnavailable(str(exc)) from exc
    counts["orphans"] = orphans
    logger.info("files cleanup", extra=counts)
    return counts


# --- signed URLs of the local store ---------------------------------------------------------------


def sign_token(*, file_id: str, method: str, ttl: int) -> tuple[str, dt.datetime]:
    """A token allowing ``method`` ("GET"/"PUT") on the file's content URL until it expires."""
    expires = timezone.now() + dt.timedelta(seconds=ttl)
    token = signing.dumps({"f": file_id, "m": method, "e": int(expires.timestamp())}, salt=_SIGNER_SALT)
    return token, expires


def check_token(*, token: str, file_id: str, method: str) -> None:
    """NotFound unless ``token`` allows ``method`` on ``file_id`` now (expired, forged or other file)."""
    try:
        data = signing.loads(token, salt=_SIGNER_SALT)
    except signing.BadSignature:
        raise NotFound("File not found", extra={"file_id": file_id}) from None
    if data.get("f") != file_id or data.get("m") != method or data.get("e", 0) < timezone.now().timestamp():
        raise NotFound("File not found", extra={"file_id": file_id})


def store_body(*, row: File, chunks: Iterator[bytes]) -> None:
    """The local store's direct upload: the body of a signed PUT, streamed into the object."""
    store = _store()
    limit = row.declared_size if row.declared_size is not None else settings.FILES_MAX_UPLOAD_BYTES
    from files.uploads import HashingWriter

    try:
        target = HashingWriter(store.writer(row.object_key, content_type=row.content_type), limit)
        for chunk in chunks:
            target.write(chunk)
        target.close()
    except ObjectStoreError as exc:
        metrics.ERRORS.labels(backend=store.name, operation="upload").inc()
        raise ObjectStoreUnavailable(str(exc)) from exc
