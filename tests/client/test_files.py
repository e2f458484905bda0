"""The client's file calls (sync and async) against a live service on each object store.

Each store gets its own gunicorn (the ``local`` one with a temporary FILES_ROOT, the ``s3`` one
on moto_server over HTTP). Files above ``direct_threshold`` take the direct-upload path.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import uuid
from dataclasses import dataclass

import pytest

from persistence_client import AsyncPersistenceClient, NotFound, PersistenceClient, ValidationFailed
from tests.files.conftest import MOTO_ENDPOINT
from tests.processes import GunicornServer, service_env

# The live service uses the test database; the mark makes pytest-django set it up.
pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@dataclass(frozen=True)
class FilesLive:
    url: str
    key: str
    backend: str


@pytest.fixture(scope="module", params=["local", "s3"])
def files_live(request, django_db_setup, django_db_blocker, tmp_path_factory):
    from api_keys.models import APIKey
    from api_keys.services import api_key_create
    from files.models import File

    name = f"client-files-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        _, key = api_key_create(name=name, scopes="read,write")
    prefix = f"client-test/{uuid.uuid4().hex[:12]}/"
    overrides = {"API_AUTH_ENABLED": "true", "THROTTLE_RATE_KEY": "off", "THROTTLE_RATE_IP": "off"}
    overrides["FILES_KEY_PREFIX"] = prefix
    if request.param == "local":
        overrides |= {"FILES_BACKEND": "local", "FILES_ROOT": str(tmp_path_factory.mktemp("files"))}
    else:
        import boto3

        s3 = boto3.client(
            "s3", endpoint_url=MOTO_ENDPOINT, aws_access_key_id="testing", aws_secret_access_key="testing",
            region_name="us-east-1",
        )  # fmt: skip
        s3.create_bucket(Bucket="persistence-client-test")
        overrides |= {
            "FILES_BACKEND": "s3",
            "FILES_S3_ENDPOINT_URL": MOTO_ENDPOINT,
            "FILES_S3_BUCKET": "persistence-client-test",
            "FILES_S3_ACCESS_KEY_ID": "testing",
            "FILES_S3_SECRET_ACCESS_KEY": "testing",
            "FILES_S3_ADDRESSING_STYLE": "path",
        }
    try:
        with GunicornServer(env=service_env(**overrides), workers=1) as server:
            yield FilesLive(server.url, key, request.param)
    finally:
        # Rows the live service committed outside any test transaction: only this module's.
        with django_db_blocker.unblock():
            File.objects.filter(object_key__startswith=prefix).delete()
            APIKey.objects.filter(name=name).delete()


def test_sync_round_trip_through_the_service_and_direct(files_live, tmp_path):
    small = os.urandom(300_000)
    large = os.urandom(3 * 1024 * 1024)
    source = tmp_path / "résumé.xlsx"
    source.write_bytes(large)
    with PersistenceClient(files_live.url, api_key=files_live.key) as client:
        through = client.upload_file(
            io.BytesIO(small), filename="small.bin", kind="source", metadata={"a": 1}
        )
        direct = client.upload_file(source, direct_threshold=1024 * 1024, kind="result", expires_in=3600)
        assert through["size"] == len(small) and through["metadata"] == {"a": 1}
        assert direct["status"] == "available" and direct["filename"] == "résumé.xlsx"
        assert direct["sha256"] == hashlib.sha256(large).hexdigest()
        assert client.file(direct["file_id"]) == direct
        client.download_file(direct["file_id"], tmp_path / "out.xlsx")
        assert (tmp_path / "out.xlsx").read_bytes() == large
        buffer = io.BytesIO()
        client.download_file(through["file_id"], buffer)
        assert buffer.getvalue() == small
        listed = {item["file_id"] for item in client.iter_files(kind="result", page_size=1)}
        assert direct["file_id"] in listed and through["file_id"] not in listed
        assert client.delete_file(through["file_id"]) == {"status": "deleted", "file_id": through["file_id"]}
        with pytest.raises(NotFound):
            client.file(through["file_id"])
        with pytest.raises(ValidationFailed):
            client.upload_file(io.BytesIO(b"x"), filename="x", kind="nonsense")


def test_async_round_trip(files_live, tmp_path):
    data = os.urandom(2 * 1024 * 1024)

    async def scenario() -> None:
        async with AsyncPersistenceClient(files_live.url, api_key=files_live.key) as client:
            small = await client.upload_file(io.BytesIO(b"tiny"), filename="t.txt")
            big = await client.upload_file(io.BytesIO(data), filename="big.bin", direct_threshold=1024)
            assert big["sha256"] == hashlib.sha256(data).hexdigest()
            assert (await client.file(small["file_id"]))["size"] == 4
            await client.download_file(big["file_id"], tmp_path / "big.bin")
            assert (tmp_path / "big.bin").read_bytes() == data
            ids = [item["file_id"] async for item in client.iter_files()]
            assert {small["file_id"], big["file_id"]} <= set(ids)
            await client.delete_file(big["file_id"])
            with pytest.raises(NotFound):
                await client.file(big["file_id"])

    asyncio.run(scenario())
