"""Django admin for dead letters: records the database refused, with their error, re-queueable.

An operator reads the error, fixes the cause (a schema change, a data problem upstream), then
re-queues the letters with the action: they are buffered again as new writes and flushed.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator

from core.exceptions import InvalidRecords, StorageUnavailable
from storage_backends.dead_letters import dead_letters_requeue
from storage_backends.models import DeadLetter


class RequeuedFilter(admin.SimpleListFilter):
    title = "re-queued"
    parameter_name = "requeued"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("no", "Waiting"), ("yes", "Re-queued")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> QuerySet[DeadLetter]:
        if self.value() == "no":
            return queryset.filter(requeued_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(requeued_at__isnull=False)
        return queryset


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("id", "collection", "record_id", "short_error", "accepted_at", "failed_at", "requeued_at")
    list_filter = (RequeuedFilter, "collection")
    search_fields = ("=record_id",)
    date_hierarchy = "failed_at"
    readonly_fields = (
        "collection",
        "record_id",
        "payload",
        "error",
        "accepted_at",
        "failed_at",
        "requeued_at",
    )
    show_full_result_count = False
    actions = ["requeue"]

    @admin.display(description="error")
    def short_error(self, obj: DeadLetter) -> str:
        return str(Truncator(obj.error).chars(120))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: DeadLetter | None = None) -> bool:
        return False

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        # Rows are read-only here, but re-queueing changes them: it needs the model's change right.
        return bool(request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}"))

    @admin.action(description="Re-queue selected dead letters (buffer them again)", permissions=["requeue"])
    def requeue(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        ids = list(queryset.values_list("id", flat=True))
        try:
            count = dead_letters_requeue(ids=ids)
        except (StorageUnavailable, InvalidRecords) as exc:
            reasons = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors[:5])
            self.message_user(
                request, f"Nothing was re-queued: {exc.detail} {reasons}".strip(), messages.ERROR
            )
            return
        skipped = len(ids) - count
        note = f" ({skipped} already re-queued, skipped)" if skipped else ""
        self.message_user(request, f"Re-queued {count} dead letters{note}.", messages.SUCCESS)
