"""Django admin for operators: browse sessions and tasks, delete sessions the safe way.

Built for tables of millions of rows:
- Lists: no full COUNT (``CappedCountPaginator`` counts at most ``COUNT_CAP`` rows); tasks: ordering that
  an index serves for each filter (``TaskAdmin.get_ordering``), the session shown by raw id (no join).
- Deleting a session (action, or the change page's Delete button) goes through the same service as
  the API (``session_delete``): tasks in bounded chunks, buffered writes purged. The confirmation
  shows counts, never a list of every task.
- Rows are read-only here: a write must go through the API and its buffer, or a buffered write
  would silently overwrite an edit made in the admin at the next flush.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import model_ngettext
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from core.errors import NotFound
from core.exceptions import StorageUnavailable
from storage_backends import registry
from storage_backends.base import Filter, Query
from storage_backends.sql import sql_backend
from translation.collections import SESSIONS, TASKS
from translation.models import Session, Task
from translation.representation import progress
from translation.services.lifecycle import session_delete

# Rows the tasks list counts at most: COUNT(*) over millions of rows takes seconds on InnoDB, and
# nobody pages past 10,000 rows by hand (filter instead). Pages beyond the cap are not offered.
COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """A paginator whose count stops at ``COUNT_CAP`` (``SELECT COUNT(*) FROM (... LIMIT n)``)."""

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: COUNT_CAP + 1].count()


class RoutedAdmin(admin.ModelAdmin):
    """Reads the rows from the database its collection is routed to (the SQL plugin's
    ``database`` option in STORAGE_BACKENDS), not always the default one."""

    collection: str

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).using(sql_backend(self.collection).database)


def _tasks_count(session_ids: list[str]) -> int:
    """Stored tasks of these sessions, asked of the backend serving tasks."""
    return registry.backend(TASKS).count(
        TASKS, Query(filters=(Filter("session_id", "in", tuple(session_ids)),))
    )


def _tasks_url(session_id: str) -> str:
    return reverse("admin:translation_task_changelist") + f"?session__exact={session_id}"


@admin.register(Session)
class SessionAdmin(RoutedAdmin):
    collection = SESSIONS
    list_display = (
        "session_id",
        "filename",
        "status",
        "llm_provider",
        "progress_bar",
        "total_tasks",
        "tasks_link",
        "updated_at",
        "created_at",
    )
    list_filter = ("status", "llm_provider")
    # "^": a prefix match on the primary key uses its index; the filename is a substring match.
    search_fields = ("^session_id", "filename")
    date_hierarchy = "created_at"
    # Both descending: an index on created_at (alone or after status) read backwards serves it; a
    # mixed direction would sort the whole table for every page.
    ordering = ("-created_at", "-session_id")
    sortable_by = ("created_at", "updated_at")
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    actions = ["delete_sessions"]
    readonly_fields = ("progress_bar", "pending", "tasks_link")

    @admin.display(description="progress")
    def progress_bar(self, obj: Session) -> str:
        percent = progress({"completed_tasks": obj.completed_tasks, "total_tasks": obj.total_tasks})
        return format_html('<progress max="100" value="{}"></progress> {} %', percent, percent)

    @admin.display(description="pending tasks")
    def pending(self, obj: Session) -> int:
        return max(obj.total_tasks - obj.completed_tasks - obj.failed_tasks - obj.processing_tasks, 0)

    @admin.display(description="tasks")
    def tasks_link(self, obj: Session) -> str:
        return format_html('<a class="tasks-link" href="{}">tasks</a>', _tasks_url(obj.session_id))

    # --- read-only rows, deletion through the service --------------------------------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Session | None = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Django's own delete_selected lists every related row and deletes without the service.
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[list, dict, set, list]:
        """The change page's delete confirmation: the session and a count of its tasks."""
        deleted, counts, perms, protected = super().get_deleted_objects(objs, request)
        tasks = _tasks_count([obj.session_id for obj in objs])
        deleted.append(f"{tasks} tasks of this session, and any writes still buffered for it")
        counts["tasks"] = tasks
        return deleted, counts, perms, protected

    def delete_model(self, request: HttpRequest, obj: Session) -> None:
        self._delete(request, [obj.session_id])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        self._delete(request, list(queryset.values_list("pk", flat=True)))

    def _delete(self, request: HttpRequest, session_ids: list[str]) -> tuple[int, int]:
        sessions = tasks = 0
        for session_id in session_ids:
            try:
                tasks += session_delete(session_id=session_id)
                sessions += 1
            except NotFound:
                continue  # deleted meanwhile
            except StorageUnavailable as exc:
                self.message_user(request, f"Stopped at {session_id}: {exc.detail}", messages.ERROR)
                break
        return sessions, tasks

    @admin.action(description="Delete selected sessions with their tasks", permissions=["delete"])
    def delete_sessions(self, request: HttpRequest, queryset: QuerySet[Session]) -> HttpResponse | None:
        session_ids = list(queryset.values_list("pk", flat=True))
        if request.POST.get("post") == "yes":
            sessions, tasks = self._delete(request, session_ids)
            self.message_user(
                request,
                f"Deleted {sessions} {model_ngettext(self.opts, sessions)} and {tasks} tasks "
                "(their buffered writes were discarded).",
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete sessions with their tasks?",
            "opts": self.opts,
            "session_ids": session_ids,
            "sessions_count": len(session_ids),
            "tasks_count": _tasks_count(session_ids),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(
            request, "admin/translation/session/delete_sessions_confirmation.html", context
        )


class TaskSessionFilter(admin.SimpleListFilter):
    """Shows which session the list is narrowed to (set by a session's "tasks" link)."""

    title = "session"
    parameter_name = "session__exact"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, value)] if value else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        value = self.value()
        return queryset.filter(session_id=value) if value else queryset


@admin.register(Task)
class TaskAdmin(RoutedAdmin):
    collection = TASKS
    list_display = (
        "task_id",
        "session_link",
        "sheet_name",
        "row_index",
        "column_name",
        "status",
        "retry_count",
        "updated_at",
    )
    list_filter = (TaskSessionFilter, "status")
    raw_id_fields = ("session",)
    search_fields = ("=task_id",)  # exact primary-key match: an index lookup, never a scan
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
    sortable_by = ()  # every order the list uses is chosen to match an index (get_ordering)
    list_select_related = False

    @admin.display(description="session")
    def session_link(self, obj: Task) -> str:
        # From the task's own column: no join, no query per row.
        url = reverse("admin:translation_session_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, obj.session_id)

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        """An order an index serves for the current filter, so a page reads only its rows:
        one session: (session_id, row_index, task_id); one status: (status, updated_at);
        otherwise the primary key."""
        if request.GET.get("session__exact"):
            return ("row_index", "task_id")
        if request.GET.get("status__exact"):
            return ("-updated_at", "-task_id")
        return ("task_id",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        # Tasks go with their session (SessionAdmin); a lone delete could be undone by a buffered write.
        return False
