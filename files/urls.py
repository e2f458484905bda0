"""Routes under /api/v1/storage/ (docs/api.md §7)."""

from __future__ import annotations

from django.urls import path

from files.api.views import (
    FileCompleteView,
    FileContentView,
    FileDetailView,
    FileDownloadView,
    FileListView,
    FileUploadUrlView,
    FileUploadView,
)

app_name = "files"

urlpatterns = [
    path("files", FileListView.as_view(), name="file-list"),
    path("files/upload", FileUploadView.as_view(), name="file-upload"),
    path("files/upload-url", FileUploadUrlView.as_view(), name="file-upload-url"),
    path("files/<str:file_id>/complete", FileCompleteView.as_view(), name="file-complete"),
    path("files/<str:file_id>/download", FileDownloadView.as_view(), name="file-download"),
    path("files/<str:file_id>", FileDetailView.as_view(), name="file-detail"),
]

#: The local store's signed URLs (GET bytes, PUT a direct upload), outside /api/v1/: the token in
#: the query is the permission, no API key (persistence_site.urls mounts them at /files/).
content_urlpatterns = [
    path("<str:file_id>", FileContentView.as_view(), name="file-content"),
]
