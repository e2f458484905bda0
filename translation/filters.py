"""Query-parameter filters of the list endpoints (docs/api.md §3), as django-filter FilterSets.

Dates (``from_date``, ``to_date``, on ``created_at``) take an ISO 8601 date or date-time; a
date-time without an offset is UTC. Both bounds are inclusive, and a bare date as ``to_date``
covers that whole day. A malformed value is a 400 ``INVALID_QUERY`` listing each bad parameter.

Values are compared exactly as sent (docs/api.md §0 "Values"): nothing is stripped (django-filter's
``CharFilter`` and Django's date fields strip by default), and strings are compared code point by
code point even where the column's collation would not (MySQL/MariaDB's ``*_ci`` collations find
``openai`` for ``OpenAI`` and for ``openai ``).

    filters = query_filters(SessionFilter, request.query_params)   # for a storage_backends Query
    filterset = valid_filterset(FileFilter, request.query_params, File.objects.all())  # ORM apps
    rows = filterset.qs

The translation lists read through their storage backend (storage_backends.registry), so their
FilterSets only validate the parameters; ``query_filters`` turns the valid ones into the backend's
``Filter`` spec, with the same meaning as the FilterSet's own ``qs`` (which the files app uses).
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
from storage_backends.base import Filter
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


def valid_filterset(
    filterset_class: type[F], query: Mapping[str, Any], queryset: QuerySet[Any] | None = None
) -> F:
    """The bound FilterSet; 400 INVALID_QUERY listing every malformed parameter. Without a
    ``queryset`` it only validates (its ``qs`` is then not to be read)."""
    filterset = filterset_class(data=query, queryset=queryset)
    if not filterset.is_valid():
        raise InvalidQuery("Invalid query parameters.", errors=form_errors(filterset.form))
    return filterset


def query_filters(
    filterset_class: type[django_filters.FilterSet], query: Mapping[str, Any]
) -> tuple[Filter, ...]:
    """The valid parameters of ``query`` as storage ``Filter``s; 400 INVALID_QUERY when malformed.

    Same meaning as the FilterSet's ``qs``: choices and exact strings compare equal (exactly, by
    the backend), ``from_date`` is inclusive, ``to_date`` too, up to the end of a bare date's day.
    """
    filterset = valid_filterset(filterset_class, query)
    data = filterset.form.cleaned_data
    found: list[Filter] = []
    for name, declared in filterset.filters.items():
        value = data.get(name)
        if value in EMPTY_VALUES:
            continue
        if isinstance(declared, CreatedTo):
            bare_date = len(str(query.get("to_date", ""))) == len("2026-01-31")
            if bare_date:
                found.append(Filter("created_at", "lt", value + dt.timedelta(days=1)))
            else:
                found.append(Filter("created_at", "lte", value))
        elif isinstance(declared, CreatedFrom):
            found.append(Filter("created_at", "gte", value))
        else:  # ChoiceFilter, ExactCharFilter
            found.append(Filter(declared.field_name, "eq", value))
    return tuple(found)
