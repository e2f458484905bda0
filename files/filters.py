"""Query-parameter filters of GET /api/v1/storage/files (docs/api.md §7), like translation.filters."""

from __future__ import annotations

import django_filters

from files.models import File, FileKind, FileStatus
from translation.filters import CreatedFrom, CreatedTo, ExactCharFilter


class FileFilter(django_filters.FilterSet):
    session_id = ExactCharFilter()
    kind = django_filters.ChoiceFilter(choices=FileKind.choices)
    status = django_filters.ChoiceFilter(choices=FileStatus.choices)
    from_date = CreatedFrom()
    to_date = CreatedTo()

    class Meta:
        model = File
        fields: list[str] = []
