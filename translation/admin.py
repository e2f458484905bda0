"""Django admin for sessions and tasks (browsing; the full admin builds on this)."""

from django.contrib import admin

from translation.models import Session, Task


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = (
        "session_id",
        "filename",
        "status",
        "llm_provider",
        "total_tasks",
        "completed_tasks",
        "updated_at",
    )
    list_filter = ("status", "llm_provider")
    search_fields = ("session_id", "filename")
    date_hierarchy = "created_at"


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("task_id", "session_id", "sheet_name", "row_index", "column_name", "status", "updated_at")
    list_filter = ("status",)
    raw_id_fields = ("session",)
    show_full_result_count = False
