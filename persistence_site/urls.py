"""URL configuration: the API under /api/v1/, /health, the admin and the OpenAPI documents."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from files import urls as files_urls
from system.health import health

handler404 = "core.errors.api_not_found"
handler500 = "core.errors.api_server_error"

urlpatterns = [
    path("health", health, name="health"),
    path("api/v1/translation/recovery/", include("recovery.urls")),
    path("api/v1/translation/", include("translation.urls")),
    path("api/v1/system/", include("system.urls")),
    path("api/v1/storage/", include("files.urls")),
    path("files/", include((files_urls.content_urlpatterns, "files-content"))),
    path("api/v1/audit/", include("audit.urls")),
    path("api/v1/", include("users.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    re_path(r"^docs/?$", RedirectView.as_view(pattern_name="swagger-ui"), name="docs"),
]
