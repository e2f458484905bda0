"""Admin pages of files: list, filter, and delete with the bytes (bytes first, then the rows)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from files.models import File
from files.services import files_delete


@admin.register(File)
class FileAdmin(admin.ModelAdmin):
    list_display = (
        "file_id",
        "filename",
        "kind",
        "status",
        "size",
        "session_id",
        "backend",
        "expires_at",
        "created_at",
    )
    list_filter = ("status", "kind", "backend", "created_at")
    search_fields = ("file_id", "filename", "session_id")
    readonly_fields = [f.name for f in File._meta.fields]
    ordering = ("-created_at", "file_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: File) -> None:
        files_delete(File.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        files_delete(File.objects.filter(pk__in=list(queryset.values_list("pk", flat=True))))
