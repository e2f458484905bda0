"""DRF content negotiation with a shortcut for the usual request, which accepts anything.

Nearly every API request sends no ``Accept`` header or ``Accept: */*``. DRF's default negotiation
parses that header and each renderer's media type into objects on every request (about 30 us, a
few per cent of a cache-hit read); for ``*/*`` its answer is always the first renderer with that
renderer's own media type, which this returns directly. Anything else (another header, a
``?format=`` override or suffix) goes through DRF's negotiation unchanged.

    REST_FRAMEWORK = {"DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.negotiation.ContentNegotiation"}
"""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ) -> tuple[Any, str]:
        if (
            renderers
            and format_suffix is None
            and request.META.get("HTTP_ACCEPT", "*/*") == "*/*"
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
            and "*" not in renderers[0].media_type
        ):
            return renderers[0], renderers[0].media_type
        chosen: tuple[Any, str] = super().select_renderer(request, renderers, format_suffix)
        return chosen
