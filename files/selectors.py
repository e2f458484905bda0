"""Reads of file metadata: visible files (not expired), lists, the contract's representation.

row = file_get(file_id="...")              # NotFound when unknown or expired
body = page_of(files_query(filters), params, render=file_repr)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from core.errors import NotFound
from files.models import File

FILE_FIELDS = (
    "file_id",
    "filename",
    "content_type",
    "size",
    "sha256",
    "status",
    "kind",
    "session_id",
    "metadata",
    "expires_at",
    "created_at",
    "updated_at",
)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def file_repr(row: File) -> dict[str, Any]:
    """The File of docs/api.md §7."""
    body = {name: getattr(row, name) for name in FILE_FIELDS}
    for name in ("expires_at", "created_at", "updated_at"):
        body[name] = _iso(body[name])
    return body


def visible(now: dt.datetime | None = None) -> Q:
    """Not expired: a file past ``expires_at`` is gone at once, whether or not swept yet."""
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now or timezone.now())


def file_get(*, file_id: str) -> File:
    row = File.objects.filter(visible(), pk=file_id).first()
    if row is None:
        raise NotFound("File not found", extra={"file_id": file_id})
    return row


def files_query(
    *,
    session_id: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    from_date: dt.datetime | None = None,
    to_date: dt.datetime | None = None,
) -> QuerySet[File]:
    """Visible files matching the filters, newest first (ties by file_id)."""
    query = File.objects.filter(visible())
    if session_id is not None:
        query = query.filter(session_id=session_id)
    if kind is not None:
        query = query.filter(kind=kind)
    if status is not None:
        query = query.filter(status=status)
    if from_date is not None:
        query = query.filter(created_at__gte=from_date)
    if to_date is not None:
        query = query.filter(created_at__lte=to_date)
    return query.order_by("-created_at", "file_id")
