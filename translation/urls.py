"""Routes under /api/v1/translation/ (API.md §2-§5)."""

app_name = "translation"

urlpatterns: list = [
    # write path (batch writes, flush) — translation/api/writes.py
    # read path (sessions, tasks, stats) — translation/api/queries.py
    # lifecycle (delete, status, cleanup) — translation/api/lifecycle.py
]
