"""What one upload costs: the S3 requests and queries it makes, and the sha256 computed once.

The requests are counted by a handler on the store's own boto3 client (botocore's event hooks,
the public way to observe requests; nothing is patched), against moto_server over HTTP.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections import Counter
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from django.db import connection
from django.test.utils import CaptureQueriesContext

from files.uploads import HashingWriter
from storage_backends.object_store import (
    PART_SIZE,
    ObjectWriter,
    S3ObjectStore,
    _remember_signed_payload,
)
from tests.files.test_api import upload

MB = 1024 * 1024


@pytest.fixture
def s3_requests(store) -> Iterator[Counter[str]]:
    """Operation names of the requests the s3 store sends, counted as they go out; the payload
    hashes PutObject requests were signed with under ``"signed"``."""
    if not isinstance(store, S3ObjectStore):
        pytest.skip("S3 requests are counted on the s3 backends")
    sent: Counter[str] = Counter()
    sent.signed = []  # type: ignore[attr-defined]

    def count(event_name: str, request, **_: object) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        sent[operation] += 1
        if operation == "PutObject":
            sent.signed.append(request.headers["X-Amz-Content-SHA256"].decode())  # type: ignore[attr-defined]

    store.client.meta.events.register("before-send.s3", count, unique_id="test-upload-cost")
    yield sent
    store.client.meta.events.unregister("before-send.s3", unique_id="test-upload-cost")


def test_a_one_megabyte_upload_is_one_put_object_and_one_insert(api_client, store, s3_requests):
    data = os.urandom(MB)

    with CaptureQueriesContext(connection) as queries:
        response = upload(api_client, data, "one.bin", content_type="application/octet-stream")

    assert response.status_code == 201, response.content[:300]
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    # The file's sha256 is the payload hash the PUT was signed with (the body is hashed once).
    assert s3_requests.signed == [response.json()["sha256"]]
    # No HeadBucket/CreateBucket/HeadObject checks, no multipart upload, no copy: one PUT.
    assert dict(s3_requests) == {"PutObject": 1}
    assert [query["sql"].split()[0] for query in queries.captured_queries] == ["INSERT"]


def test_a_body_above_the_part_size_is_one_multipart_upload(api_client, store, s3_requests):
    data = os.urandom(PART_SIZE + 1)

    response = upload(api_client, data, "big.bin", content_type="application/octet-stream")

    assert response.status_code == 201, response.content[:300]
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    # Parts of at least PART_SIZE as the body is parsed (how many depends on where the parser's
    # chunks end), no PutObject.
    assert set(s3_requests) == {"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}
    assert s3_requests["CreateMultipartUpload"] == s3_requests["CompleteMultipartUpload"] == 1


@pytest.mark.parametrize("size", [0, 1, MB, PART_SIZE, PART_SIZE + 1], ids=["0", "1", "1M", "part", "part+1"])
def test_the_writer_returns_the_sha256_of_what_it_stored(store, settings, size):
    data = os.urandom(size)
    key = f"{settings.FILES_KEY_PREFIX}{uuid.uuid4()}"
    writer = store.writer(key, content_type="application/octet-stream")
    assert writer.hashes
    for start in range(0, size, 64 * 1024):
        writer.write(data[start : start + 64 * 1024])

    digest = writer.close()

    assert digest == hashlib.sha256(data).hexdigest()
    stored = hashlib.sha256(b"".join(store.read_chunks(key))).hexdigest()
    assert stored == digest


def test_a_one_put_body_is_hashed_once_by_the_signer(store, settings):
    """The PutObject's SigV4 payload hash is the file's sha256: the writer hashes nothing itself."""
    if not isinstance(store, S3ObjectStore):
        pytest.skip("payload signing is an S3 notion")
    data = os.urandom(MB)
    writer = store.writer(f"{settings.FILES_KEY_PREFIX}{uuid.uuid4()}", content_type="text/csv")
    writer.write(data)

    digest = writer.close()

    assert digest == hashlib.sha256(data).hexdigest()
    assert writer._digest.hexdigest() == hashlib.sha256().hexdigest()  # nothing went through it


def test_an_unsigned_payload_put_is_hashed_by_the_writer(store, settings):
    """Over HTTPS botocore may sign ``UNSIGNED-PAYLOAD`` (no payload hash to reuse): the writer
    then hashes the body itself. A client with payload signing off sends that over HTTP too."""
    if not isinstance(store, S3ObjectStore):
        pytest.skip("payload signing is an S3 notion")
    store.client = boto3.client(
        "s3",
        endpoint_url=settings.FILES_S3_ENDPOINT_URL,
        aws_access_key_id=settings.FILES_S3_ACCESS_KEY_ID,
        aws_secret_access_key=settings.FILES_S3_SECRET_ACCESS_KEY,
        region_name=settings.FILES_S3_REGION,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": settings.FILES_S3_ADDRESSING_STYLE, "payload_signing_enabled": False},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    store.client.meta.events.register("before-send.s3.PutObject", _remember_signed_payload)
    signed: list[str] = []
    store.client.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **_: signed.append(request.headers["X-Amz-Content-SHA256"].decode()),
    )
    data = os.urandom(MB)
    key = f"{settings.FILES_KEY_PREFIX}{uuid.uuid4()}"
    writer = store.writer(key, content_type="application/octet-stream")
    writer.write(data)

    digest = writer.close()

    assert signed == ["UNSIGNED-PAYLOAD"]
    assert digest == hashlib.sha256(data).hexdigest()


def test_a_writer_that_does_not_hash_is_hashed_by_the_caller():
    class Collect(ObjectWriter):
        def __init__(self) -> None:
            self.chunks: list[bytes] = []

        def write(self, chunk: bytes) -> None:
            self.chunks.append(chunk)

        def close(self) -> None:
            return None

        def abort(self) -> None:
            self.chunks = []

    target = HashingWriter(Collect(), limit=10)
    target.write(b"abc")
    target.write(b"def")
    target.close()

    assert target.size == 6
    assert target.sha256 == hashlib.sha256(b"abcdef").hexdigest()
