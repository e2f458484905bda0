"""The files endpoints of docs/api.md §7 on both object stores (local directory, S3 over HTTP)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from files.models import File
from files.services import files_cleanup, object_key, sign_token
from storage_backends.object_store import check_key
from tests.factories import session_record

BASE = "/api/v1/storage/files"


def upload(client, data: bytes, filename: str = "book.xlsx", content_type: str = "text/csv", **fields):
    body = {"file": SimpleUploadedFile(filename, data, content_type=content_type), **fields}
    return client.post(f"{BASE}/upload", body, format="multipart")


def fetch(client, file_id: str) -> tuple[bytes, dict[str, str]]:
    """The bytes as a plain HTTP client gets them: following the 302 (s3) or served (local)."""
    response = client.get(f"{BASE}/{file_id}/download")
    if response.status_code == 302:
        answer = httpx.get(response["Location"])
        assert answer.status_code == 200, answer.text
        return answer.content, dict(answer.headers)
    assert response.status_code == 200
    return b"".join(response.streaming_content), {k.lower(): v for k, v in response.items()}


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"", "empty.csv"),
        (b"x", "one.bin"),
        ("名前,值\n".encode() * 1000, "翻訳 résumé.xlsx"),
        (b"x", "😀" * 251 + ".csv"),
    ],
    ids=["empty", "one-byte", "non-ascii", "longest-name-of-4-byte-characters"],
)
def test_upload_round_trip(api_client, store, data, filename):
    response = upload(api_client, data, filename, kind="source", metadata='{"lang": "ja"}')
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["status"] == "available"
    assert body["kind"] == "source"
    assert body["metadata"] == {"lang": "ja"}
    assert body["filename"] == filename
    assert body["content_type"] == "text/csv"
    assert body["created_at"].endswith("Z")
    got, headers = fetch(api_client, body["file_id"])
    assert got == data
    disposition = headers["content-disposition"]
    if filename.isascii():
        assert f'filename="{filename}"' in disposition
    else:
        assert "filename*=utf-8''" in disposition.lower()
    assert api_client.get(f"{BASE}/{body['file_id']}").json() == body
    # The key is the service's own id, never the client's name.
    assert File.objects.get(pk=body["file_id"]).object_key == object_key(body["file_id"])


def test_fifty_megabytes_round_trip(api_client, store):
    data = os.urandom(50 * 1024 * 1024)
    response = upload(api_client, data, "big.bin", content_type="application/octet-stream")
    assert response.status_code == 201, response.content[:300]
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    got, _ = fetch(api_client, response.json()["file_id"])
    assert got == data


def test_a_malformed_multipart_body_is_400_in_the_contracts_shape(api_client, store):
    # a part whose headers never end
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n' + b"X: " + b"y" * 10_000
    )

    response = api_client.post(f"{BASE}/upload", body, content_type="multipart/form-data; boundary=XyZ")

    assert response.status_code == 400
    assert response.json()["error_code"] == "MALFORMED_JSON"
    assert File.objects.count() == 0


def test_traversal_filename_never_reaches_the_key(api_client, store):
    response = upload(api_client, b"abc", "../../etc/passwd")
    assert response.status_code == 201
    row = File.objects.get(pk=response.json()["file_id"])
    assert ".." not in row.object_key
    with pytest.raises(ValueError, match="not an object key"):
        check_key("files/../../etc/passwd")


def test_upload_larger_than_limit_is_413_and_leaves_nothing(api_client, store, settings):
    settings.FILES_MAX_UPLOAD_BYTES = 1000
    response = upload(api_client, b"y" * 20_000)
    assert response.status_code == 413
    assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    assert not File.objects.exists()
    assert list(store.iter_objects(settings.FILES_KEY_PREFIX)) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "cat"}, "kind"),
        ({"metadata": "[1]"}, "metadata"),
        ({"metadata": "{not json"}, "metadata"),
        ({"expires_in": "59"}, "expires_in"),
        ({"expires_in": "soon"}, "expires_in"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_fields_are_422_and_leave_no_object(api_client, store, settings, fields, field):
    response = upload(api_client, b"abc", **fields)
    assert response.status_code == 422
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert field in [error["field"] for error in response.json()["errors"]]
    assert list(store.iter_objects(settings.FILES_KEY_PREFIX)) == []


def test_missing_file_part_is_422(api_client, store):
    response = api_client.post(f"{BASE}/upload", {"kind": "source"}, format="multipart")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "file"
    assert api_client.post(f"{BASE}/upload", {"kind": "x"}, format="json").status_code == 422


def test_unknown_session_is_422(api_client, store, write_buffer):
    response = upload(api_client, b"abc", session_id="nope")
    assert response.status_code == 422
    assert response.json()["error_code"] == "SESSION_NOT_FOUND"


def _put(api_client, upload_target: dict, data: bytes) -> int:
    """Send the bytes where upload-url said: the store itself (s3) or the service (local)."""
    url = upload_target["url"]
    if urlsplit(url).hostname == "testserver":
        parts = urlsplit(url)
        response = api_client.put(
            f"{parts.path}?{parts.query}", data, content_type=upload_target["headers"]["Content-Type"]
        )
        return response.status_code
    # Content-Length as the bytes really are (the wrong-size cases send other than declared; real S3
    # refuses those at once, the emulator stores them and complete finds the difference).
    headers = {k: v for k, v in upload_target["headers"].items() if k.lower() != "content-length"}
    return httpx.put(url, content=data, headers=headers).status_code


def test_presigned_upload_then_complete(api_client, store):
    data = b"direct upload " * 1000
    digest = hashlib.sha256(data).hexdigest()
    response = api_client.post(
        f"{BASE}/upload-url",
        {"filename": "direct.csv", "size": len(data), "sha256": digest, "content_type": "text/csv"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    file_id = body["file"]["file_id"]
    assert body["file"]["status"] == "pending"
    assert body["upload"]["method"] == "PUT"
    assert body["upload"]["headers"] == {"Content-Type": "text/csv", "Content-Length": str(len(data))}
    assert api_client.get(f"{BASE}/{file_id}/download").status_code == 409
    assert _put(api_client, body["upload"], data) == 200
    done = api_client.post(f"{BASE}/{file_id}/complete")
    assert done.status_code == 200, done.json()
    assert done.json()["status"] == "available"
    assert done.json()["sha256"] == digest
    assert done.json()["size"] == len(data)
    assert fetch(api_client, file_id)[0] == data


def test_complete_without_object_or_with_wrong_size_is_409(api_client, store):
    first = api_client.post(f"{BASE}/upload-url", {"filename": "a.csv", "size": 10}, format="json").json()
    missing = api_client.post(f"{BASE}/{first['file']['file_id']}/complete")
    assert missing.status_code == 409
    assert missing.json()["error_code"] == "UPLOAD_INCOMPLETE"
    assert _put(api_client, first["upload"], b"0123456789") == 200
    second = api_client.post(f"{BASE}/upload-url", {"filename": "b.csv", "size": 5}, format="json").json()
    status = _put(api_client, second["upload"], b"0123")
    assert status == 200
    wrong = api_client.post(f"{BASE}/{second['file']['file_id']}/complete")
    assert wrong.status_code == 409
    assert "4 bytes" in wrong.json()["detail"]
    third = api_client.post(
        f"{BASE}/upload-url", {"filename": "c.csv", "size": 3, "sha256": "0" * 64}, format="json"
    ).json()
    _put(api_client, third["upload"], b"abc")
    assert api_client.post(f"{BASE}/{third['file']['file_id']}/complete").status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"size": 1},
        {"filename": "", "size": 1},
        {"filename": "a", "size": -1},
        {"filename": "a", "size": "1"},
        {"filename": "a\nb", "size": 1},
        {"filename": "a", "size": 1, "sha256": "xyz"},
    ],
)
def test_upload_url_validation(api_client, store, body):
    response = api_client.post(f"{BASE}/upload-url", body, format="json")
    assert response.status_code == 422
    assert response.json()["error_code"] == "VALIDATION_ERROR"


def test_download_without_redirect_gives_a_url(api_client, store):
    file_id = upload(api_client, b"hello").json()["file_id"]
    response = api_client.get(f"{BASE}/{file_id}/download?redirect=false")
    assert response.status_code == 200
    url = response.json()["url"]
    assert response.json()["expires_at"].endswith("Z")
    if store.direct:
        assert httpx.get(url).content == b"hello"
    else:
        parts = urlsplit(url)
        got = api_client.get(f"{parts.path}?{parts.query}", HTTP_RANGE="bytes=1-3")
        assert got.status_code == 206
        assert b"".join(got.streaming_content) == b"ell"
        assert got["Content-Range"] == "bytes 1-3/5"


def test_local_range_and_signed_url_checks(api_client, store):
    if store.direct:
        pytest.skip("the local store serves bytes itself")
    file_id = upload(api_client, b"0123456789").json()["file_id"]
    tail = api_client.get(f"{BASE}/{file_id}/download", HTTP_RANGE="bytes=-3")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == b"789"
    assert api_client.get(f"{BASE}/{file_id}/download", HTTP_RANGE="bytes=20-").status_code == 416
    expired, _ = sign_token(file_id=file_id, method="GET", ttl=-1)
    assert api_client.get(f"/files/{file_id}?token={expired}").status_code == 404
    assert api_client.get(f"/files/{file_id}?token=forged").status_code == 404
    put_token, _ = sign_token(file_id=file_id, method="PUT", ttl=60)
    assert api_client.get(f"/files/{file_id}?token={put_token}").status_code == 404


def test_delete_removes_bytes_and_metadata(api_client, store):
    file_id = upload(api_client, b"bye").json()["file_id"]
    response = api_client.delete(f"{BASE}/{file_id}")
    assert response.status_code == 200
    assert response.json() == {"status": "deleted", "file_id": file_id}
    assert store.stat(object_key(file_id)) is None
    missing = api_client.get(f"{BASE}/{file_id}")
    assert missing.status_code == 404
    assert missing.json()["file_id"] == file_id
    assert api_client.delete(f"{BASE}/{file_id}").status_code == 404


def test_expiry_hides_at_once_and_the_sweep_removes_bytes(api_client, store):
    file_id = upload(api_client, b"short-lived", expires_in="60").json()["file_id"]
    kept = upload(api_client, b"kept").json()["file_id"]
    File.objects.filter(pk=file_id).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert api_client.get(f"{BASE}/{file_id}").status_code == 404
    assert api_client.get(f"{BASE}/{file_id}/download").status_code == 404
    assert [item["file_id"] for item in api_client.get(BASE).json()["items"]] == [kept]
    assert store.stat(object_key(file_id)) is not None  # hidden, not yet swept
    counts = files_cleanup()
    assert counts["expired"] == 1
    assert store.stat(object_key(file_id)) is None
    assert not File.objects.filter(pk=file_id).exists()
    assert store.stat(object_key(kept)) is not None


def test_sweep_removes_orphans_and_stale_pending_uploads(api_client, store, settings):
    kept = upload(api_client, b"kept").json()["file_id"]
    orphan = object_key("0f0f0f0f-0000-4000-8000-000000000000")
    writer = store.writer(orphan, content_type="text/plain")  # bytes stored, then a "crash"
    writer.write(b"orphan")
    writer.close()
    pending = api_client.post(f"{BASE}/upload-url", {"filename": "p", "size": 1}, format="json").json()
    assert files_cleanup()["orphans"] == 0  # too young: it may be an upload in flight
    later = timezone.now() + dt.timedelta(seconds=settings.FILES_PENDING_TTL + 60)
    assert files_cleanup(now=later, dry_run=True)["orphans"] == 1
    counts = files_cleanup(now=later)
    assert counts["orphans"] == 1 and counts["pending"] == 1
    assert store.stat(orphan) is None
    assert not File.objects.filter(pk=pending["file"]["file_id"]).exists()
    assert store.stat(object_key(kept)) is not None
    assert api_client.get(f"{BASE}/{kept}").status_code == 200


@pytest.mark.django_db(transaction=True)  # the flush and the delete commit (like the lifecycle tests)
def test_session_delete_removes_its_files(api_client, store, write_buffer):
    from storage_backends.flush import flush_all
    from translation.collections import SESSIONS
    from translation.services.lifecycle import session_delete

    write_buffer.add(SESSIONS, [session_record("s-files"), session_record("s-other")])
    flush_all(write_buffer, wait=5)  # stored sessions (a buffered one is accepted as well)
    mine = upload(api_client, b"mine", session_id="s-files", kind="result").json()
    assert mine["session_id"] == "s-files", mine
    other = upload(api_client, b"other", session_id="s-other").json()
    listed = api_client.get(f"{BASE}?session_id=s-files").json()
    assert [item["file_id"] for item in listed["items"]] == [mine["file_id"]]
    session_delete(session_id="s-files", buffer=write_buffer)
    assert api_client.get(f"{BASE}/{mine['file_id']}").status_code == 404
    assert store.stat(object_key(mine["file_id"])) is None
    assert not File.objects.filter(pk=mine["file_id"]).exists()
    assert api_client.get(f"{BASE}/{other['file_id']}").status_code == 200


def test_list_filters_and_pagination(api_client, store):
    ids = [
        upload(api_client, b"%d" % n, kind="result" if n % 2 else "source").json()["file_id"]
        for n in range(5)
    ]
    page = api_client.get(f"{BASE}?page_size=2&page=1").json()
    assert page["total"] == 5 and page["total_pages"] == 3 and len(page["items"]) == 2
    everything = api_client.get(BASE).json()["items"]
    assert {item["file_id"] for item in everything} == set(ids)
    created = [item["created_at"] for item in everything]
    assert created == sorted(created, reverse=True)
    assert api_client.get(f"{BASE}?kind=result").json()["total"] == 2
    assert api_client.get(f"{BASE}?status=pending").json()["total"] == 0
    assert api_client.get(f"{BASE}?page=9").json()["items"] == []
    for bad in ("page=0", "page_size=101", "kind=cat", "from_date=yesterday"):
        answer = api_client.get(f"{BASE}?{bad}")
        assert answer.status_code == 400, bad
        assert answer.json()["error_code"] == "INVALID_QUERY"
