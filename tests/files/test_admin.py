"""The Django admin of files: list with filters, delete (one and in bulk) removes the bytes too."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from files.models import File
from files.services import object_key

CHANGELIST = "admin:files_file_changelist"


def _upload(client, data: bytes, **fields) -> str:
    body = {"file": SimpleUploadedFile("f.csv", data, content_type="text/csv"), **fields}
    response = client.post("/api/v1/storage/files/upload", body, format="multipart")
    assert response.status_code == 201
    return response.json()["file_id"]


def test_list_filters_by_kind(admin_client, api_client, store):
    source = _upload(api_client, b"s", kind="source")
    _upload(api_client, b"r", kind="result")

    page = admin_client.get(reverse(CHANGELIST), {"kind__exact": "source"})

    assert page.status_code == 200
    assert [row.file_id for row in page.context["cl"].result_list] == [source]


def test_delete_one_and_in_bulk_removes_the_bytes(admin_client, api_client, store):
    one, two, three = (_upload(api_client, b"%d" % n) for n in range(3))

    answer = admin_client.post(reverse("admin:files_file_delete", args=[one]), {"post": "yes"})
    assert answer.status_code == 302
    answer = admin_client.post(
        reverse(CHANGELIST), {"action": "delete_selected", "_selected_action": [two, three], "post": "yes"}
    )
    assert answer.status_code == 302

    assert not File.objects.exists()
    for file_id in (one, two, three):
        assert store.stat(object_key(file_id)) is None
