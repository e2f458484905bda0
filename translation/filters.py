"""Query-parameter filters of the list endpoints (docs/api.md §3), as django-filter FilterSets.

Dates (``from_date``, ``to_date``, on ``created_at``) take an ISO 8601 date or date-time; a
date-time without an offset is UTC. Both bounds are inclusive, and a bare date as ``to_date``
covers that whole day. A malformed value is a 400 ``INVALID_QUERY`` listing each bad parameter.

Values are compared exactly as sent (docs/api.md §0 "Values"): nothing is stripped (django-filter's
``CharFilter`` and Django's date fields strip by default), and strings are compared code point by
code point even where the column's collation would not (MySQL/MariaDB's ``*_ci`` collations find
``openai`` for ``OpenAI`` and for ``openai ``).

    filterset = valid_filterset(SessionFilter, request.query_params, Session.objects.all())
    rows = filterset.qs
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, TypeVar

import django_filters
from django import forms
from django.db import connections
from django.db.models import QuerySet
from django.db.models.functions import Collate
from django_filters.constants import EMPTY_VALUES
from django_filters.fields import IsoDateTimeField

from core.errors import InvalidQuery
from core.pagination import form_errors
from translation.models import IdField, Session, SessionStatus, Task, TaskStatus, binary_collation


class ExactCharFilter(django_filters.CharFilter):
    """Equal to the value as sent: not stripped, and compared under a binary collation on
    MySQL/MariaDB (IdField columns have one already). The plain comparison stays too, so an index
    on the column still serves it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strip=False, **kwargs)

    def filter(self, qs: QuerySet[Any], value: str | None) -> QuerySet[Any]:
        if value in EMPTY_VALUES:
            return qs
        qs = super().filter(qs, value)
        collation = binary_collation(connections[qs.db])
        field = qs.model._meta.get_field(self.field_name)
        if collation is None or isinstance(field.target_field if field.is_relation else field, IdField):
            return qs  # already exact
        alias = f"{self.field_name}_exact"
        return qs.alias(**{alias: Collate(self.field_name, collation)}).filter(**{alias: value})


class ExactIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date or date-time, refused (not stripped) with surrounding whitespace."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value != value.strip():
            raise forms.ValidationError(
                "Enter a date or date-time without surrounding whitespace.", code="invalid"
            )
        return super().to_python(value)


class CreatedFrom(django_filters.IsoDateTimeFilter):
    field_class = ExactIsoDateTimeField

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(field_name="created_at", lookup_expr="gte", **kwargs)


class CreatedTo(django_filters.IsoDateTimeFilter):
    """``created_at`` up to the value, inclusive; up to the end of the day for a bare date."""

    field_class = ExactIsoDateTimeField

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(field_name="created_at", **kwargs)

    def filter(self, qs: QuerySet[Any], value: dt.datetime | None) -> QuerySet[Any]:
        if value is None:
            return qs
        raw = str(self.parent.data.get("to_date", ""))
        if len(raw) == len("2026-01-31"):  # a bare date: the whole day
            return qs.filter(created_at__lt=value + dt.timedelta(days=1))
        return qs.filter(created_at__lte=value)


class SessionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=SessionStatus.choices)
    llm_provider = ExactCharFilter()
    from_date = CreatedFrom()
    to_date = CreatedTo()

    class Meta:
        model = Session
        fields: list[str] = []


class SessionTaskFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=TaskStatus.choices)
    sheet_name = ExactCharFilter()

    class Meta:
        model = Task
        fields: list[str] = []


class TaskFilter(django_filters.FilterSet):
    session_id = ExactCharFilter()
    status = django_filters.ChoiceFilter(choices=TaskStatus.choices)
    batch_id = ExactCharFilter()
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
