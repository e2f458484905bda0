"""Read-only admin pages of audit events: an audit trail is never edited, added to or deleted
from by hand (retention drops whole months)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "timestamp",
        "actor_id",
        "actor_type",
        "action",
        "resource_type",
        "resource_id",
        "outcome",
    )
    list_filter = ("outcome", "actor_type")
    search_fields = ("=event_id", "=actor_id", "^action", "=resource_id")
    date_hierarchy = "timestamp"
    ordering = ("-timestamp", "-event_id")
    exclude = ("search_terms",)
    show_full_result_count = False  # a COUNT(*) over millions of events on every page is not worth it

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuditEvent._meta.fields if f.name != "search_terms"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
