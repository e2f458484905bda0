"""X-API-Key authentication: 401 without or with a bad key, 403 without the scope, in the contract's shape."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from api_keys.models import APIKey
from api_keys.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db
CONFIG = "/api/v1/system/config"  # needs admin
METRICS = "/api/v1/system/metrics"  # any valid key


def _assert_401(response):
    assert response.status_code == 401
    body = response.json()
    assert body["error_code"] == "NOT_AUTHENTICATED"
    assert body["errors"] == []
    assert "X-API-Key" in response["WWW-Authenticate"]


def test_request_without_a_key_is_401_with_www_authenticate(client, auth_enabled):
    response = client.get(CONFIG)

    _assert_401(response)
    assert "X-API-Key" in response.json()["detail"]


def test_unknown_key_is_401(client, auth_enabled, make_api_key):
    secret = make_api_key("admin")
    prefix, _, rest = secret.partition(".")

    response = client.get(CONFIG, headers={"X-API-Key": f"{prefix}.{rest[::-1]}"})

    _assert_401(response)


@pytest.mark.parametrize("value", ["garbage", ".", "x" * 500, "nodot" * 3])
def test_malformed_key_is_401(client, auth_enabled, value):
    _assert_401(client.get(CONFIG, headers={"X-API-Key": value}))


def test_revoked_key_is_401(client, auth_enabled, make_api_key):
    secret = make_api_key("admin")
    api_key_revoke(prefix=secret.partition(".")[0])

    _assert_401(client.get(CONFIG, headers={"X-API-Key": secret}))


def test_expired_key_is_401(client, auth_enabled):
    _, secret = api_key_create(
        name="old", scopes="admin", expiry_date=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    )

    _assert_401(client.get(CONFIG, headers={"X-API-Key": secret}))


def test_key_in_the_authorization_header_is_not_accepted(client, auth_enabled, make_api_key):
    secret = make_api_key("admin")

    _assert_401(client.get(CONFIG, headers={"Authorization": f"Api-Key {secret}"}))


def test_key_without_the_scope_is_403_permission_denied(client, auth_enabled, make_api_key):
    secret = make_api_key("read,write")

    response = client.get(CONFIG, headers={"X-API-Key": secret})

    assert response.status_code == 403
    body = response.json()
    assert body["error_code"] == "PERMISSION_DENIED"
    assert "'admin'" in body["detail"]


def test_key_with_the_scope_passes(client, auth_enabled, make_api_key):
    response = client.get(CONFIG, headers={"X-API-Key": make_api_key("admin")})

    assert response.status_code == 200


def test_any_valid_key_reads_metrics(client, auth_enabled, make_api_key):
    response = client.get(METRICS, headers={"X-API-Key": make_api_key("write")})

    assert response.status_code == 200


def test_auth_disabled_lets_requests_without_a_key_through(client, settings):
    settings.API_AUTH_ENABLED = False

    assert client.get(CONFIG).status_code == 200


def test_keys_are_stored_hashed(auth_enabled, make_api_key):
    secret = make_api_key("read")
    stored = APIKey.objects.get(prefix=secret.partition(".")[0])

    assert secret not in {stored.id, stored.hashed_key, stored.prefix}
    assert stored.hashed_key.startswith("sha512$$")
    assert secret.partition(".")[2] not in stored.id


def test_health_needs_no_key(client, auth_enabled):
    assert client.get("/health").status_code in (200, 503)


def test_api_keys_never_reach_the_logs(client, auth_enabled, make_api_key, caplog):
    from core.logging_setup import JsonFormatter

    secret = make_api_key("read")
    caplog.set_level(logging.DEBUG)

    client.get(METRICS, headers={"X-API-Key": secret})  # 200
    client.get(CONFIG, headers={"X-API-Key": secret})  # 403
    client.get(CONFIG, headers={"X-API-Key": secret + "x"})  # 401

    formatter = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    lines = [formatter.format(record) for record in caplog.records]
    assert any("/api/v1/system/config" in line for line in lines)  # the access log did write
    assert not [line for line in lines if secret.partition(".")[2] in line]
