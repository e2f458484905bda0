"""The content-negotiation shortcut answers exactly what DRF's own negotiation answers."""

from __future__ import annotations

import pytest
from django.http import Http404
from django.test import RequestFactory
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request

from core.json_codec import ORJSONRenderer
from core.negotiation import ContentNegotiation

ACCEPTS = [None, "*/*", "application/json", "application/json; indent=4", "text/html", "*/*;q=0.8", "text/*"]
RENDERER_SETS = [[ORJSONRenderer()], [JSONRenderer(), BrowsableAPIRenderer()], [BrowsableAPIRenderer()]]


def _answer(negotiation: DefaultContentNegotiation, request: Request, renderers: list, suffix: str | None):
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers, suffix)
    except (exceptions.NotAcceptable, Http404) as exc:
        return type(exc).__name__
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("renderers", RENDERER_SETS, ids=["orjson", "json+browsable", "browsable"])
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api", "?page=2"])
@pytest.mark.parametrize("suffix", [None, "json"])
def test_the_shortcut_answers_what_drf_answers(accept, renderers, query, suffix):
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    request = Request(RequestFactory().get("/api/v1/users/u1" + query, **headers))

    assert _answer(ContentNegotiation(), request, renderers, suffix) == _answer(
        DefaultContentNegotiation(), request, renderers, suffix
    )
