"""Query-parameter filters of the list endpoints (API.md §3), as django-filter FilterSets.

Dates (``from_date``, ``to_date``, on ``created_at``) take an ISO 8601 date or date-time; a
date-time without an offset is UTC. Both bounds are inclusive, and a bare date as ``to_date``
covers that whole day. A malformed value is a 400 ``INVALID_QUERY`` listing each bad parameter.

    filterset = valid_filterset(SessionFilter, request.query_params, Session.objects.all())
    rows = filterset.qs
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, TypeVar

import django_filters
from django.db.models import QuerySet

from persistence_site.errors import InvalidQuery
from persistence_site.pagination import form_errors
from translation.models import Session, SessionStatus, Task, TaskStatus


class CreatedFrom(django_filters.IsoDateTimeFilter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(field_name="created_at", lookup_expr="gte", **kwargs)


class CreatedTo(django_filters.IsoDateTimeFilter):
    """``created_at`` up to the value, inclusive; up to the end of the day for a bare date."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(field_name="created_at", **kwargs)

    def filter(self, qs: QuerySet[Any], value: dt.datetime | None) -> QuerySet[Any]:
        if value is None:
            return qs
        raw = str(self.parent.data.get("to_date", "")).strip()
        if len(raw) == len("2026-01-31"):  # a bare date: the whole day
            return qs.filter(created_at__lt=value + dt.timedelta(days=1))
        return qs.filter(created_at__lte=value)


class SessionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=SessionStatus.choices)
    llm_provider = django_filters.CharFilter()
    from_date = CreatedFrom()
    to_date = CreatedTo()

    class Meta:
        model = Session
        fields: list[str] = []


class SessionTaskFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=TaskStatus.choices)
    sheet_name = django_filters.CharFilter()

    class Meta:
        model = Task
        fields: list[str] = []


class TaskFilter(django_filters.FilterSet):
    session_id = django_filters.CharFilter()
    status = django_filters.ChoiceFilter(choices=TaskStatus.choices)
    batch_id = django_filters.CharFilter()
    from_date = CreatedFrom()
    to_date = CreatedTo()

    class Meta:
        model = Task
        fields: list[str] = []


F = TypeVar("F", bound=django_filters.FilterSet)


def valid_filterset(filterset_class: type[F], query: Mapping[str, Any], queryset: QuerySet[Any]) -> F:
    """The bound FilterSet; 400 INVALID_QUERY listing every malformed parameter."""
    filterset = filterset_class(data=query, queryset=queryset)
    if not filterset.is_valid():
        raise InvalidQuery("Invalid query parameters.", errors=form_errors(filterset.form))
    return filterset
