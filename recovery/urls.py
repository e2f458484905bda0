"""Routes under /api/v1/translation/recovery/ (API.md §4)."""

app_name = "recovery"

urlpatterns: list = []
