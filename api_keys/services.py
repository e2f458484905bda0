"""Creating and revoking API keys, and the development key of the embedded quick start.

api_key, secret = api_key_create(name="backend-v2", scopes="read,write")
api_key_revoke(prefix=api_key.prefix)
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

from django.db import transaction

from api_keys.models import APIKey
from api_keys.scopes import ADMIN, parse_scopes
from audit.services import audited, record_event

DEV_KEY_NAME = "development"


def api_key_create(
    *,
    name: str,
    scopes: str | Iterable[str],
    expiry_date: dt.datetime | None = None,
    actor_id: str | None = None,
    actor_type: str | None = None,
) -> tuple[APIKey, str]:
    """Create a key; returns it and its secret, which is not stored and cannot be shown again.

    Audited (``api_key.create``, the key's prefix as resource id; never the secret). The actor is
    ``actor_id``/``actor_type``, else the request being served (an admin user), else ``system``.
    """
    with audited(
        "api_key.create",
        resource_type="api_key",
        message=f"API key {name!r}",
        actor_id=actor_id,
        actor_type=actor_type,
    ) as event:
        canonical = ",".join(parse_scopes(scopes))
        event.details["scopes"] = canonical
        api_key = APIKey(name=name, scopes=canonical, expiry_date=expiry_date)
        api_key.full_clean(exclude=["id", "prefix", "hashed_key"])
        api_key, secret = APIKey.objects.create_key(name=name, scopes=canonical, expiry_date=expiry_date)
        event.resource_id = api_key.prefix
        return api_key, secret


def api_key_revoke(*, prefix: str, actor_id: str | None = None, actor_type: str | None = None) -> APIKey:
    """Revoke the key with this prefix for good (raises ``APIKey.DoesNotExist``). Audited
    (``api_key.revoke``), a failed attempt too."""
    with audited(
        "api_key.revoke",
        resource_type="api_key",
        resource_id=prefix,
        actor_id=actor_id,
        actor_type=actor_type,
    ) as event:
        api_key = APIKey.objects.get(prefix=prefix)
        event.message = f"API key {api_key.name!r}"
        if not api_key.revoked:
            api_key.revoked = True
            api_key.save(update_fields=["revoked"])
        return api_key


def api_key_audit(*, action: str, api_key: APIKey) -> None:
    """Record a change made outside these services (the admin's form and bulk action)."""
    record_event(
        action, resource_type="api_key", resource_id=api_key.prefix, message=f"API key {api_key.name!r}"
    )


def dev_api_key_ensure(*, path: Path) -> tuple[str, bool]:
    """The development key kept in ``path`` (mode 0600), created with the admin scope when the
    file is missing or its key no longer works. Returns the key and whether it was created.

    For the embedded quick start only: the secret sits in a file, which is fine on a laptop and
    never acceptable in production (the management command refuses to run with DEBUG off).
    """
    if path.exists():
        existing = path.read_text(encoding="utf-8").strip()
        if existing and APIKey.objects.is_valid(existing):
            return existing, False
    with transaction.atomic():
        _, secret = api_key_create(name=DEV_KEY_NAME, scopes=[ADMIN])
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    path.chmod(0o600)  # O_CREAT's mode does not apply to a file that already existed
    return secret, True
