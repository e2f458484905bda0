"""The user endpoints of docs/api.md §8 on MariaDB and Redis."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from users.models import User

pytestmark = pytest.mark.django_db


def test_create_answers_201_with_the_user(api_client, uid):
    response = api_client.post(
        "/api/v1/users",
        {
            "user_id": f"u-{uid}",
            "username": f"n-{uid}",
            "email": f"{uid}@x.org",
            "preferences": {"lang": "zh"},
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["user_id"] == f"u-{uid}" and body["status"] == "active" and body["display_name"] == ""
    assert body["preferences"] == {"lang": "zh"} and body["created_at"].endswith("Z")


def test_create_assigns_a_uuid_when_no_user_id(api_client, uid):
    body = api_client.post("/api/v1/users", {"username": f"n-{uid}"}, format="json").json()
    assert len(body["user_id"]) == 36


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_id", "sessions"),
        ("user_id", "a/b"),
        ("username", ""),
        ("email", "not-an-email"),
        ("username", 5),
        ("status", "gone"),
        ("extra", 1),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(api_client, uid, field, value):
    response = api_client.post("/api/v1/users", {"username": f"n-{uid}", field: value}, format="json")
    assert response.status_code == 422
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert response.json()["errors"][0]["field"] == field


def test_a_body_that_is_not_an_object_is_400(api_client):
    response = api_client.post("/api/v1/users", "[1]", content_type="application/json")
    assert response.status_code == 400 and response.json()["error_code"] == "MALFORMED_JSON"


@pytest.mark.parametrize("field", ["user_id", "username", "email"])
def test_a_taken_value_is_409_naming_the_field(api_client, user, uid, field):
    body = {"user_id": f"other-{uid}", "username": f"other-{uid}", "email": f"other-{uid}@x.org"}
    body[field] = user[field].upper() if field == "email" else user[field]
    response = api_client.post("/api/v1/users", body, format="json")
    assert response.status_code == 409
    assert response.json()["error_code"] == "CONFLICT"
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_get_answers_the_user_and_404_for_an_unknown_one(api_client, user):
    assert api_client.get(f"/api/v1/users/{user['user_id']}").json() == user
    response = api_client.get("/api/v1/users/nobody-here")
    assert response.status_code == 404 and response.json()["user_id"] == "nobody-here"


def test_patch_changes_only_the_fields_sent_and_is_read_back_at_once(api_client, user):
    # given a cached read
    api_client.get(f"/api/v1/users/{user['user_id']}")
    # when
    response = api_client.patch(
        f"/api/v1/users/{user['user_id']}", {"display_name": "Ada", "preferences": {"a": 1}}, format="json"
    )
    # then
    assert response.status_code == 200
    again = api_client.get(f"/api/v1/users/{user['user_id']}").json()
    assert again["display_name"] == "Ada" and again["preferences"] == {"a": 1}
    assert again["username"] == user["username"]


def test_patch_to_a_taken_username_is_409(api_client, user, uid):
    other = api_client.post("/api/v1/users", {"username": f"second-{uid}"}, format="json").json()
    response = api_client.patch(
        f"/api/v1/users/{other['user_id']}", {"username": user["username"]}, format="json"
    )
    assert response.status_code == 409 and response.json()["errors"][0]["field"] == "username"


def test_patch_null_username_is_422(api_client, user):
    response = api_client.patch(f"/api/v1/users/{user['user_id']}", {"username": None}, format="json")
    assert response.status_code == 422


def test_list_filters_by_status_and_username_or_email_prefix(api_client, uid):
    for n, status in enumerate(["active", "disabled", "active"]):
        api_client.post(
            "/api/v1/users",
            {"username": f"p{uid}-{n}", "email": f"M{uid}{n}@x.org", "status": status},
            format="json",
        )
    by_name = api_client.get("/api/v1/users", {"q": f"p{uid}", "status": "active"}).json()
    assert [item["username"] for item in by_name["items"]] == [f"p{uid}-0", f"p{uid}-2"]
    by_email = api_client.get("/api/v1/users", {"q": f"m{uid}1"}).json()
    assert [item["username"] for item in by_email["items"]] == [f"p{uid}-1"]
    assert api_client.get("/api/v1/users", {"page_size": 1, "q": f"p{uid}"}).json()["total_pages"] == 3


def test_list_rejects_bad_paging_and_status(api_client):
    assert api_client.get("/api/v1/users", {"page": 0}).status_code == 400
    assert api_client.get("/api/v1/users", {"status": "x"}).json()["error_code"] == "INVALID_QUERY"


def test_the_prefix_search_is_an_index_range_not_a_table_scan(uid):
    # given enough rows that a scan would cost more than the indexes
    now = timezone.now()
    User.objects.bulk_create(
        User(
            user_id=f"x{uid}{n}",
            username=f"x{uid}{n}",
            email_key=f"x{uid}{n}@x.org",
            created_at=now,
            updated_at=now,
        )
        for n in range(300)
    )
    # when the page query of `q` is explained
    plan = User.objects.filter(Q(username__istartswith="ab") | Q(email_key__istartswith="ab")).explain()
    # then MariaDB merges the two unique indexes' ranges
    assert "ALL" not in plan.split(), plan
    assert "username" in plan and "email_key" in plan


def test_delete_removes_the_user_and_ends_its_sessions(api_client, user):
    token = api_client.post(f"/api/v1/users/{user['user_id']}/sessions", {}, format="json").json()["token"]
    response = api_client.delete(f"/api/v1/users/{user['user_id']}")
    assert response.status_code == 200 and response.json()["ended_sessions"] == 1
    assert api_client.get(f"/api/v1/users/{user['user_id']}").status_code == 404
    assert (
        api_client.post("/api/v1/users/sessions/validate", {"token": token}, format="json").status_code == 404
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_creates_have_exactly_one_winner(uid):
    from rest_framework.test import APIClient

    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def create(n: int) -> None:
        barrier.wait()
        response = APIClient().post(
            "/api/v1/users", {"user_id": f"t{uid}-{n}", "username": f"same-{uid}"}, format="json"
        )
        statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [409] * 7


@pytest.mark.django_db(transaction=True)
def test_the_cache_is_invalidated_before_the_write_and_again_after_its_commit(api_client, uid, monkeypatch):
    # given a user, and a record of what the database holds at each invalidation
    from storage_backends import read_cache

    api_client.post("/api/v1/users", {"user_id": f"r{uid}", "username": f"r{uid}"}, format="json")
    seen: list[str] = []
    real = read_cache.invalidate

    def spy(*keys: str) -> None:
        seen.append(User.objects.using("default").get(user_id=f"r{uid}").display_name)
        real(*keys)

    monkeypatch.setattr(read_cache, "invalidate", spy)
    # when
    api_client.patch(f"/api/v1/users/r{uid}", {"display_name": "new"}, format="json")
    # then: once before the change, once after it is committed (a reader that loaded the old row in
    # between cannot fill the cache under the version that follows the commit)
    assert seen == ["", "new"]
