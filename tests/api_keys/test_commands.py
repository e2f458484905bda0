"""Management commands: create_api_key, revoke_api_key, ensure_dev_api_key."""

from __future__ import annotations

import io
import stat

import pytest
from django.core.management import CommandError, call_command

from api_keys.models import APIKey

pytestmark = pytest.mark.django_db
CONFIG = "/api/v1/system/config"


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_api_key_prints_a_working_key_once_with_its_scopes(client, auth_enabled):
    output = _run("create_api_key", "backend-v2", "--scopes", "write,read")
    secret = output.strip().splitlines()[-1]

    stored = APIKey.objects.get(prefix=secret.partition(".")[0])
    assert stored.name == "backend-v2"
    assert stored.scopes == "read,write"
    assert "cannot be shown again" in output
    assert client.get(CONFIG, headers={"X-API-Key": secret}).status_code == 403  # no admin scope
    assert client.get("/api/v1/system/metrics", headers={"X-API-Key": secret}).status_code == 200


def test_create_api_key_quiet_prints_only_the_key():
    output = _run("create_api_key", "ci", "--scopes", "admin", "--quiet")

    assert APIKey.objects.get_from_key(output.strip()).scopes == "admin"
    assert len(output.strip().splitlines()) == 1


def test_create_api_key_with_expiry_sets_the_expiry_date():
    secret = _run("create_api_key", "temp", "--expires-days", "7", "--quiet").strip()

    assert APIKey.objects.get_from_key(secret).expiry_date is not None


def test_create_api_key_refuses_an_unknown_scope():
    with pytest.raises(CommandError, match="superuser"):
        _run("create_api_key", "x", "--scopes", "read,superuser")

    assert not APIKey.objects.exists()


def test_revoke_api_key_makes_the_key_fail(client, auth_enabled):
    secret = _run("create_api_key", "gone", "--scopes", "admin", "--quiet").strip()

    output = _run("revoke_api_key", secret.partition(".")[0])

    assert "Revoked" in output
    assert client.get(CONFIG, headers={"X-API-Key": secret}).status_code == 401


def test_revoke_api_key_of_an_unknown_prefix_is_an_error():
    with pytest.raises(CommandError, match="No API key"):
        _run("revoke_api_key", "nothere1")


def test_ensure_dev_api_key_creates_an_admin_key_once_and_reuses_it(settings, tmp_path, client, auth_enabled):
    settings.DEBUG = True
    path = tmp_path / "dev-api-key"

    first = _run("ensure_dev_api_key", "--path", str(path))
    second = _run("ensure_dev_api_key", "--path", str(path))

    key = path.read_text().strip()
    assert key in first and key in second
    assert "Created" in first and "Created" not in second
    assert APIKey.objects.count() == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert client.get(CONFIG, headers={"X-API-Key": key}).status_code == 200


def test_ensure_dev_api_key_replaces_a_revoked_key(settings, tmp_path, auth_enabled):
    settings.DEBUG = True
    path = tmp_path / "dev-api-key"
    _run("ensure_dev_api_key", "--path", str(path))
    old = path.read_text().strip()
    APIKey.objects.update(revoked=True)

    _run("ensure_dev_api_key", "--path", str(path))

    new = path.read_text().strip()
    assert new != old
    assert APIKey.objects.is_valid(new)


def test_ensure_dev_api_key_refuses_to_run_with_debug_off(settings, tmp_path):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG"):
        _run("ensure_dev_api_key", "--path", str(tmp_path / "k"))

    assert not (tmp_path / "k").exists()


def test_ensure_dev_api_key_makes_no_key_when_auth_is_off(settings, tmp_path):
    settings.DEBUG = True
    settings.API_AUTH_ENABLED = False

    output = _run("ensure_dev_api_key", "--path", str(tmp_path / "k"))

    assert "API_AUTH_ENABLED=false" in output
    assert not APIKey.objects.exists()
