"""The object store: where the files app keeps the bytes of uploaded files (docs/api.md §7).

Two backends behind one interface, chosen by ``settings.FILES_BACKEND``:
- ``s3``: boto3 against any S3-compatible service (AWS S3, Aliyun OSS's S3 endpoint, MinIO,
  moto_server in the tests). Large bodies go up as multipart uploads (aborted on failure);
  downloads and direct uploads use presigned URLs signed for ``FILES_S3_PUBLIC_ENDPOINT_URL``.
- ``local``: a directory (``FILES_ROOT``), the embedded default. The service itself serves and
  receives the bytes through signed, expiring URLs (files.api).

Both are ``StorageBackend`` subclasses (storage_backends.base) so the storage-plugin routing can
name them; the record methods of that interface do not apply to bytes and stay unimplemented.
Keys are built by the service only (``files/<uuid>``), never from client-chosen names.

    store = get_object_store()
    writer = store.writer(key, content_type="text/csv")
    for chunk in chunks:
        writer.write(chunk)
    sha256 = writer.close()           # hex digest of the stored bytes; or writer.abort() on failure
    store.stat(key)                   # ObjectInfo(size=..., modified=...) or None
    store.download_url(key, filename="résumé.xlsx", content_type="...", ttl=300)
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.http import content_disposition_header
from django.utils.module_loading import import_string

from core import tracing
from storage_backends.base import StorageBackend

logger = logging.getLogger(__name__)

#: FILES_BACKEND short names.
BACKENDS = {
    "local": "storage_backends.object_store.LocalObjectStore",
    "s3": "storage_backends.object_store.S3ObjectStore",
}
#: Keys the service builds: a prefix of letters, digits, "-", "_" and "/" ending in "/", then a UUID.
_KEY = re.compile(r"^(?:[A-Za-z0-9_-]+/)*[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# S3 multipart: every part but the last is at least 5 MiB; 8 MiB parts keep memory flat and bounded.
PART_SIZE = 8 * 1024 * 1024
#: Parts of one multipart upload sent at once while the next is received.
PARALLEL_PARTS = 2


class ObjectStoreError(Exception):
    """The object store could not be reached or refused the operation (retry later)."""


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    modified: dt.datetime


def check_key(key: str) -> str:
    """``key`` when the service could have built it; ValueError otherwise (no path traversal)."""
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"not an object key: {key!r}")
    return key


class ObjectWriter:
    """Receives one object's bytes in chunks; ``close()`` stores it, ``abort()`` leaves nothing.

    A writer whose ``hashes`` is True computes the sha256 of the bytes it stores (once: the
    S3 writer reuses the payload hash it signs a PUT with) and ``close()`` returns its hex digest;
    otherwise ``close()`` returns None and the caller hashes what it writes."""

    hashes = False

    def write(self, chunk: bytes) -> None:
        raise NotImplementedError

    def close(self) -> str | None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class ObjectStore(StorageBackend):
    """Bytes by key. Every method raises ``ObjectStoreError`` when the store fails."""

    name = "object_store"
    #: True when clients download and upload straight from/to the store (presigned URLs).
    direct = False

    def writer(self, key: str, *, content_type: str) -> ObjectWriter:
        raise NotImplementedError

    def stat(self, key: str) -> ObjectInfo | None:
        raise NotImplementedError

    def open(self, key: str) -> IO[bytes]:
        """A binary file object of the stored bytes (local store only)."""
        raise NotImplementedError

    def read_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        raise NotImplementedError

    def delete_objects(self, keys: list[str]) -> None:
        """Delete these objects; a missing one is not an error."""
        raise NotImplementedError

    def iter_objects(self, prefix: str) -> Iterator[tuple[str, ObjectInfo]]:
        """Every stored (key, info) whose key starts with ``prefix``."""
        raise NotImplementedError

    def download_url(self, key: str, *, filename: str, content_type: str, ttl: int) -> str:
        """A presigned GET URL (direct stores only)."""
        raise NotImplementedError

    def upload_target(self, key: str, *, content_type: str, size: int, ttl: int) -> dict[str, Any]:
        """``{"method", "url", "headers"}`` of a presigned PUT of exactly ``size`` bytes (direct stores only)."""
        raise NotImplementedError

    def sweep_incomplete(self, older_than: dt.datetime) -> int:
        """Abort unfinished uploads started before ``older_than``; returns how many."""
        return 0


# --- local directory --------------------------------------------------------------------------


class _LocalWriter(ObjectWriter):
    hashes = True

    def __init__(self, final: Path, incoming: Path) -> None:
        incoming.mkdir(parents=True, exist_ok=True)
        self._final = final
        self._tmp = incoming / f"{uuid.uuid4()}.part"
        self._file = self._tmp.open("wb")
        self._digest = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self._file.write(chunk)

    @tracing.traced("object_store.put", backend="local")
    def close(self) -> str:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, self._final)  # atomic: a reader sees the whole object or none
        return self._digest.hexdigest()

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class LocalObjectStore(ObjectStore):
    """Objects as files under ``FILES_ROOT``; a partial upload lives in ``.incoming/`` until closed."""

    name = "local"

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root or settings.FILES_ROOT).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise ValueError(f"not an object key: {key!r}")
        return path

    def writer(self, key: str, *, content_type: str) -> ObjectWriter:
        try:
            return _LocalWriter(self._path(key), self.root / ".incoming")
        except OSError as exc:
            raise ObjectStoreError(f"local store: {exc}") from exc

    @tracing.traced("object_store.stat", backend="local")
    def stat(self, key: str) -> ObjectInfo | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ObjectStoreError(f"local store: {exc}") from exc
        return ObjectInfo(st.st_size, dt.datetime.fromtimestamp(st.st_mtime, tz=dt.UTC))

    def open(self, key: str) -> IO[bytes]:
        return self._path(key).open("rb")

    def read_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        with self.open(key) as handle:
            while chunk := handle.read(chunk_size):
                yield chunk

    @tracing.traced("object_store.delete", backend="local")
    def delete_objects(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self._path(key).unlink(missing_ok=True)
            except OSError as exc:
                raise ObjectStoreError(f"local store: {exc}") from exc

    def iter_objects(self, prefix: str) -> Iterator[tuple[str, ObjectInfo]]:
        base = self.root / prefix
        if not base.is_dir():
            return
        for path in base.rglob("*"):
            if path.is_file():
                key = path.relative_to(self.root).as_posix()
                st = path.stat()
                yield key, ObjectInfo(st.st_size, dt.datetime.fromtimestamp(st.st_mtime, tz=dt.UTC))

    @tracing.traced("object_store.sweep_incomplete", backend="local")
    def sweep_incomplete(self, older_than: dt.datetime) -> int:
        incoming = self.root / ".incoming"
        removed = 0
        if incoming.is_dir():
            for path in incoming.iterdir():
                if dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC) < older_than:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def health_check(self) -> bool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            return os.access(self.root, os.W_OK)
        except OSError:
            return False


# --- S3 API ---------------------------------------------------------------------------------

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
#: The payload hash of the last PutObject this thread sent, as signed (see ``_S3Writer.close``).
_signed = threading.local()


def _remember_signed_payload(request: Any, **_: Any) -> None:
    """``before-send.s3.PutObject``: keep the body and the ``X-Amz-Content-SHA256`` the request was
    signed with (SigV4 hashes the whole payload over plain HTTP, and whenever no checksum header is
    sent; S3 refuses a body whose sha256 differs from it)."""
    value = request.headers.get("X-Amz-Content-SHA256")
    _signed.body = request.body
    _signed.sha256 = value.decode() if isinstance(value, bytes) else value


class _S3Writer(ObjectWriter):
    """Buffers up to ``PART_SIZE``; a body that fits is one PUT, a larger one a multipart upload
    whose parts are sent by ``PARALLEL_PARTS`` threads while the next part is received (memory:
    at most ``PARALLEL_PARTS + 1`` parts).

    The sha256 of the object is computed once: a one-PUT body's is the payload hash botocore signs
    the PUT with (hashed here only when the request was not signed that way, e.g. over HTTPS with
    a checksum header); a multipart upload's first part is hashed when the upload starts, the rest
    as it is received."""

    hashes = True

    def __init__(self, store: S3ObjectStore, key: str, content_type: str) -> None:
        self._store, self._key, self._content_type = store, key, content_type
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        self._upload_id: str | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[dict[str, Any]]] = []

    def write(self, chunk: bytes) -> None:
        if self._upload_id is not None:  # a multipart upload: hashed as received, while in cache
            self._digest.update(chunk)
        self._buffer += chunk
        if len(self._buffer) >= PART_SIZE:
            self._flush_part()

    def _send_part(self, number: int, body: bytearray) -> dict[str, Any]:
        with tracing.span("object_store.upload_part", backend="s3", part=number, bytes=len(body)):
            answer = self._store.client.upload_part(
                Bucket=self._store.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
            )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _flush_part(self) -> None:
        if self._upload_id is None:
            self._digest.update(self._buffer)  # the first part; the next ones are hashed by write()
            with self._store.errors(), tracing.span("object_store.create_multipart_upload", backend="s3"):
                self._upload_id = self._store.client.create_multipart_upload(
                    Bucket=self._store.bucket, Key=self._key, ContentType=self._content_type
                )["UploadId"]
            self._pool = ThreadPoolExecutor(max_workers=PARALLEL_PARTS, thread_name_prefix="s3-part")
        in_flight = [future for future in self._futures if not future.done()]
        if len(in_flight) >= PARALLEL_PARTS:
            wait(in_flight, return_when=FIRST_COMPLETED)
        for future in self._futures:
            if future.done() and future.exception() is not None:
                with self._store.errors():
                    future.result()
        # The buffer itself is the part's body (no copy); the next part gets a new one.
        body, number = self._buffer, len(self._futures) + 1
        self._buffer = bytearray()
        assert self._pool is not None
        self._futures.append(self._pool.submit(tracing.in_current_context(self._send_part), number, body))

    def close(self) -> str:
        client, bucket = self._store.client, self._store.bucket
        if self._upload_id is None:
            body = self._buffer
            _signed.body = _signed.sha256 = None
            with (
                self._store.errors(),
                tracing.span("object_store.put", backend="s3", bytes=len(body)),
            ):
                client.put_object(Bucket=bucket, Key=self._key, Body=body, ContentType=self._content_type)
            signed, sent = _signed.sha256, _signed.body
            _signed.body = _signed.sha256 = None
            self._buffer = bytearray()
            if sent is body and signed is not None and _SHA256_HEX.match(signed):
                return str(signed)
            self._digest.update(body)
            return self._digest.hexdigest()
        if self._buffer:
            self._flush_part()
        with self._store.errors(), tracing.span("object_store.complete_multipart_upload", backend="s3"):
            parts = [future.result() for future in self._futures]
            client.complete_multipart_upload(
                Bucket=bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": parts}
            )
        self._shutdown()
        return self._digest.hexdigest()

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        self._buffer = bytearray()
        self._shutdown()
        if self._upload_id is not None:
            try:
                with tracing.span("object_store.abort_multipart_upload", backend="s3"):
                    self._store.client.abort_multipart_upload(
                        Bucket=self._store.bucket, Key=self._key, UploadId=self._upload_id
                    )
            except Exception:  # the sweep (sweep_incomplete) aborts it later
                logger.warning("files: aborting a multipart upload failed", exc_info=True)
            self._upload_id = None


class S3ObjectStore(ObjectStore):
    """An S3 bucket through boto3 (``FILES_S3_*`` settings)."""

    name = "s3"
    direct = True

    def __init__(self, **overrides: Any) -> None:
        import boto3
        from botocore.config import Config

        options = {
            "endpoint_url": settings.FILES_S3_ENDPOINT_URL,
            "public_endpoint_url": settings.FILES_S3_PUBLIC_ENDPOINT_URL,
            "bucket": settings.FILES_S3_BUCKET,
            "region": settings.FILES_S3_REGION,
            "access_key_id": settings.FILES_S3_ACCESS_KEY_ID,
            "secret_access_key": settings.FILES_S3_SECRET_ACCESS_KEY,
            "addressing_style": settings.FILES_S3_ADDRESSING_STYLE,
        } | overrides
        if not options["bucket"]:
            raise ImproperlyConfigured("FILES_BACKEND=s3 needs FILES_S3_BUCKET")
        self.bucket: str = options["bucket"]
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": options["addressing_style"]},
            # Newer boto3 sends CRC32 checksums that several S3-compatible servers refuse.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        session = boto3.session.Session(
            aws_access_key_id=options["access_key_id"] or None,
            aws_secret_access_key=options["secret_access_key"] or None,
            region_name=options["region"],
        )
        self.client = session.client("s3", endpoint_url=options["endpoint_url"] or None, config=config)
        self.client.meta.events.register("before-send.s3.PutObject", _remember_signed_payload)
        public = options["public_endpoint_url"] or options["endpoint_url"] or None
        self.signer = session.client("s3", endpoint_url=public, config=config)

    @functools.cached_property
    def _client_errors(self) -> tuple[type[BaseException], ...]:
        from botocore.exceptions import BotoCoreError, ClientError

        return (BotoCoreError, ClientError)

    def errors(self) -> _Translate:
        return _Translate(self._client_errors)

    def writer(self, key: str, *, content_type: str) -> ObjectWriter:
        return _S3Writer(self, check_key(key), content_type)

    @tracing.traced("object_store.stat", backend="s3")
    def stat(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise ObjectStoreError(f"s3: {exc}") from exc
        except self._client_errors as exc:
            raise ObjectStoreError(f"s3: {exc}") from exc
        return ObjectInfo(int(head["ContentLength"]), head["LastModified"])

    def read_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        with self.errors(), tracing.span("object_store.get", backend="s3"):
            body = self.client.get_object(Bucket=self.bucket, Key=check_key(key))["Body"]
        yield from body.iter_chunks(chunk_size)

    def delete_objects(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": check_key(key)} for key in keys[start : start + 1000]]
            if not batch:
                continue
            with self.errors(), tracing.span("object_store.delete", backend="s3", keys=len(batch)):
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if answer.get("Errors"):
                raise ObjectStoreError(f"s3: delete failed for {answer['Errors'][:3]}")

    def iter_objects(self, prefix: str) -> Iterator[tuple[str, ObjectInfo]]:
        paginator = self.client.get_paginator("list_objects_v2")
        with self.errors():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"], ObjectInfo(int(item["Size"]), item["LastModified"])

    def download_url(self, key: str, *, filename: str, content_type: str, ttl: int) -> str:
        with self.errors():
            url: str = self.signer.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": check_key(key),
                    "ResponseContentDisposition": content_disposition_header(True, filename),
                    "ResponseContentType": content_type,
                },
                ExpiresIn=ttl,
            )
        return url

    def upload_target(self, key: str, *, content_type: str, size: int, ttl: int) -> dict[str, Any]:
        # Content-Length is a signed header: S3 refuses a body of any other size (the emulator does
        # not check signatures; ``complete`` checks the size again).
        params = {
            "Bucket": self.bucket,
            "Key": check_key(key),
            "ContentType": content_type,
            "ContentLength": size,
        }
        with self.errors():
            url = self.signer.generate_presigned_url("put_object", Params=params, ExpiresIn=ttl)
        return {
            "method": "PUT",
            "url": url,
            "headers": {"Content-Type": content_type, "Content-Length": str(size)},
        }

    @tracing.traced("object_store.sweep_incomplete", backend="s3")
    def sweep_incomplete(self, older_than: dt.datetime) -> int:
        aborted = 0
        with self.errors():
            answer = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=settings.FILES_KEY_PREFIX)
            for upload in answer.get("Uploads", []):
                if upload["Initiated"] < older_than:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        return aborted

    def ensure_bucket(self) -> None:
        """Create the bucket when missing (tests and first start against MinIO/moto)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            with self.errors():
                self.client.create_bucket(Bucket=self.bucket)

    def health_check(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception:  # any failure means "unreachable" to a probe
            logger.warning("health: object store unreachable", exc_info=True)
            return False
        return True


class _Translate:
    """``with store.errors():`` turns boto3's errors into ``ObjectStoreError``."""

    def __init__(self, kinds: tuple[type[BaseException], ...]) -> None:
        self._kinds = kinds

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is not None and isinstance(exc, self._kinds):
            raise ObjectStoreError(f"object store: {exc}") from exc
        return False


@functools.cache
def _store(dotted_path: str) -> ObjectStore:
    try:
        cls = import_string(dotted_path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"FILES_BACKEND names {dotted_path!r}, which cannot be imported") from exc
    if not (isinstance(cls, type) and issubclass(cls, ObjectStore)):
        raise ImproperlyConfigured(f"FILES_BACKEND names {dotted_path!r}, which is not an ObjectStore")
    return cls()


def get_object_store() -> ObjectStore:
    """The configured store: ``FILES_BACKEND`` is ``local``, ``s3`` or a dotted ObjectStore path."""
    name = settings.FILES_BACKEND
    return _store(BACKENDS.get(name, name))


def reset_object_store() -> None:
    """Forget the configured store (tests that change the settings)."""
    _store.cache_clear()


def object_store_health() -> str:
    """``"healthy"`` or ``"unhealthy"`` for /health and recovery/status; never raises."""
    try:
        return "healthy" if get_object_store().health_check() else "unhealthy"
    except Exception:  # misconfiguration counts as unhealthy to a probe
        logger.warning("health: object store unusable", exc_info=True)
        return "unhealthy"
