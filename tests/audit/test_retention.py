"""Retention of audit events (AUDIT_RETENTION_DAYS): whole months older than the setting go, by the
Celery beat task and by ``manage.py cleanup_audit_logs``, through the configured backend."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command

from audit.services import audit_retention_apply, retention_cutoff_month
from audit.tasks import cleanup_audit_logs
from storage_backends.search import AuditQuery
from tests.audit.conftest import event

pytestmark = pytest.mark.integration


def _months(now: dt.datetime) -> list[dict]:
    """One event on the first and last instant of each of the 15 months before ``now``."""
    rows = []
    year, month = now.year, now.month
    for _ in range(15):
        start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
        rows.append(event(event_id=f"{start:%Y-%m}-first", timestamp=start))
        rows.append(event(event_id=f"{start:%Y-%m}-last", timestamp=start + dt.timedelta(days=27, hours=23)))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return rows


@pytest.mark.parametrize(
    ("now", "days", "first_kept"),
    [
        (dt.datetime(2026, 12, 1, tzinfo=dt.UTC), 365, dt.date(2025, 12, 1)),
        (dt.datetime(2026, 3, 15, tzinfo=dt.UTC), 30, dt.date(2026, 2, 1)),
        (dt.datetime(2026, 3, 1, tzinfo=dt.UTC), 1, dt.date(2026, 2, 1)),
    ],
)
def test_the_first_month_kept_holds_the_oldest_day_kept(now, days, first_kept):
    assert retention_cutoff_month(now=now, days=days) == first_kept


def test_the_command_drops_the_months_past_the_retention(audit_store, settings):
    settings.AUDIT_RETENTION_DAYS = 90
    now = dt.datetime.now(dt.UTC)
    audit_store.load(_months(now))
    first_kept = retention_cutoff_month(days=90)

    out = io.StringIO()
    call_command("cleanup_audit_logs", stdout=out)

    kept_start = dt.datetime(first_kept.year, first_kept.month, 1, tzinfo=dt.UTC)
    remaining = [e["timestamp"] for e in audit_store.backend.export(AuditQuery())]
    assert min(remaining) == kept_start
    assert len(remaining) == sum(1 for e in _months(now) if e["timestamp"] >= kept_start)
    assert 2 <= len(remaining) // 2 <= 5  # 90 days: the current month and about three before it
    assert f"{first_kept:%Y-%m}" not in out.getvalue().split("months:")[1]


def test_the_beat_task_applies_the_setting(audit_store, settings):
    settings.AUDIT_RETENTION_DAYS = 365
    now = dt.datetime.now(dt.UTC)
    audit_store.load(_months(now))

    first_kept = retention_cutoff_month(days=365)
    kept_start = dt.datetime(first_kept.year, first_kept.month, 1, tzinfo=dt.UTC)
    kept = sum(1 for e in _months(now) if e["timestamp"] >= kept_start)

    result = cleanup_audit_logs.apply().get()

    assert len(result["dropped"]) == 15 - kept // 2
    assert result["dropped"][-1] < f"{first_kept:%Y-%m}"
    assert audit_store.backend.search(AuditQuery()).total == kept
    assert audit_retention_apply()["dropped"] == []  # nothing more to drop


def test_the_command_refuses_a_retention_below_one_day(audit_store):
    with pytest.raises(SystemExit):
        call_command("cleanup_audit_logs", "--days", "0", stderr=io.StringIO())
