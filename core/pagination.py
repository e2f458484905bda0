"""The contract's pagination (docs/api.md §0): ``page`` from 1, ``page_size`` 1-100 (default 20).

    params = page_params(request.query_params)             # 400 INVALID_QUERY when malformed
    body = page_of(queryset, params, render=session_summary)
    body = page_body(total, rows, params, render=session_summary)   # rows read elsewhere
    # {"total": 41, "page": 3, "page_size": 20, "total_pages": 3, "items": [...]}

Two queries: a COUNT and the page itself (skipped when the page is past the end). The queryset
must already be ordered with the primary key last, so pages are stable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.db.models import QuerySet

from core.errors import InvalidQuery

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class PageForm(forms.Form):
    page = forms.IntegerField(min_value=1, required=False)
    page_size = forms.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False)


@dataclass(frozen=True)
class PageParams:
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def form_errors(form: forms.Form) -> list[dict[str, str]]:
    """A bound form's errors in the contract's ``errors`` shape."""
    return [
        {"field": field, "message": str(message)}
        for field, messages in form.errors.items()
        for message in messages
    ]


def page_params(query: Mapping[str, Any]) -> PageParams:
    form = PageForm(query)
    if not form.is_valid():
        raise InvalidQuery("Invalid pagination parameters.", errors=form_errors(form))
    return PageParams(
        page=form.cleaned_data["page"] or 1,
        page_size=form.cleaned_data["page_size"] or DEFAULT_PAGE_SIZE,
    )


def page_of(
    queryset: QuerySet[Any], params: PageParams, *, render: Callable[[Any], Any] = lambda row: row
) -> dict[str, Any]:
    """The page object for an ordered queryset of rows (``values()`` or ``values_list()``)."""
    total = queryset.order_by().count()
    if params.offset >= total:
        rows: list[Any] = []
    else:
        rows = list(queryset[params.offset : params.offset + params.page_size])
    return page_body(total, rows, params, render=render)


def page_body(
    total: int, rows: Sequence[Any], params: PageParams, *, render: Callable[[Any], Any] = lambda row: row
) -> dict[str, Any]:
    """The page object of one page of ``rows`` out of ``total`` (read by the caller)."""
    return {
        "total": total,
        "page": params.page,
        "page_size": params.page_size,
        "total_pages": math.ceil(total / params.page_size),
        "items": [render(row) for row in rows],
    }
