"""Lean routes: a few hot API routes served by plain Django views through a trimmed handler.

Django's full stack costs about a millisecond of CPU per request before a view runs (thirteen
middleware, the URL resolver's nested patterns, DRF's request wrapping, negotiation and
rendering): several times what token validation or a cached user read cost themselves. A route
declared here is answered by a plain view (its app builds it from the same authentication,
scope, parsing and error functions as its DRF view, e.g. ``api_keys.lean``) through a handler
that is Django's own (``WSGIHandler``: the same signals, ``WSGIRequest``, exception conversion,
4xx/5xx logging, status line and headers) with two differences:

- the URL is matched by the route's own pattern (the URL conf's regular expression for it,
  checked against the resolver by the tests) instead of the whole resolver;
- the middleware are ``settings.MIDDLEWARE`` without those that do nothing for a JSON API request
  that carries no cookie (``NO_OP_WITHOUT_COOKIES``); every other one runs, in the same order.

Everything else goes to the full application, unchanged: other paths and methods (HEAD, OPTIONS),
requests with a cookie, a query string, an ``Accept`` other than none, ``*/*`` or
``application/json``, a body that is not ``application/json`` with a plain ``Content-Length``, and
every request while tracing is on (its middleware is not in the trimmed chain). So the lean path
only ever serves requests the full stack would answer the same way, and ``LEAN_ROUTES_ENABLED=false``
turns it off.

    application = LeanRoutes(get_wsgi_application(), [LeanRoute("POST", r"/api/v1/x", view, "app:x", "api/v1/x")])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, get_path_info
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch
from django.utils.module_loading import import_string

from core import tracing

#: Middleware that do nothing for the lean routes' requests (no cookie, JSON in and out):
#: WhiteNoise answers only paths under STATIC_URL; the session middleware changes a response only
#: when the session was used or a session cookie came in; CSRF only checks views that are not
#: exempt (API views are) and sets its cookie only when a token was asked for or a malformed one
#: came in; authentication only attaches a lazy user; messages store only what a view added.
NO_OP_WITHOUT_COOKIES = frozenset(
    {
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    }
)
#: Accept headers for which DRF's negotiation picks the JSON renderer with its own media type.
PLAIN_ACCEPT = frozenset({None, "*/*", "application/json"})

WSGIEnviron = dict[str, Any]
StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class LeanRoute:
    """``method`` + ``pattern`` (a full match of the decoded path, named groups become the view's
    keyword arguments) answered by ``view``; ``view_name`` (``namespace:name``) and ``route`` are
    what the URL conf's resolver match carries (metrics label requests by the view name)."""

    method: str
    pattern: str
    view: Callable[..., HttpResponse]
    view_name: str
    route: str
    #: Whether the request has a JSON body (``Content-Type: application/json``).
    json_body: bool = False
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern + r"\Z"))

    def resolve(self, path_info: str) -> ResolverMatch | None:
        found = self.regex.match(path_info)
        if found is None:
            return None
        namespaces, _, url_name = self.view_name.rpartition(":")
        spaces = namespaces.split(":") if namespaces else []
        return ResolverMatch(
            self.view,
            (),
            found.groupdict(),
            url_name=url_name,
            app_names=spaces,
            namespaces=spaces,
            route=self.route,
        )


class LeanHandler(WSGIHandler):
    """Django's WSGI handler with the trimmed middleware chain and the routes' own matching."""

    def __init__(self, routes: Sequence[LeanRoute], middleware: Sequence[str]) -> None:
        self.routes = tuple(routes)
        self.middleware = tuple(middleware)
        super().__init__()  # loads the middleware (below)

    def load_middleware(self, is_async: bool = False) -> None:
        """``BaseHandler.load_middleware`` (synchronous) over the trimmed list."""
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(self.middleware):
            if path in NO_OP_WITHOUT_COOKIES:
                continue
            middleware = import_string(path)
            try:
                instance = middleware(handler)
            except MiddlewareNotUsed:
                continue
            if instance is None:
                raise ImproperlyConfigured(f"Middleware factory {path} returned None.")
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        for route in self.routes:
            if route.method == request.method:
                match = route.resolve(request.path_info)
                if match is not None:
                    request.resolver_match = match
                    return match
        raise RuntimeError(f"no lean route for {request.method} {request.path_info}")  # dispatcher bug


class LeanRoutes:
    """WSGI application: the lean routes' plain requests to a ``LeanHandler``, the rest to ``application``."""

    def __init__(
        self,
        application: Callable[[WSGIEnviron, StartResponse], Iterable[bytes]],
        routes: Sequence[LeanRoute],
    ) -> None:
        self.application = application
        self.routes = tuple(routes)
        # Built now, from the list ``application`` was built from: Django loads its middleware once.
        self.handler = LeanHandler(self.routes, settings.MIDDLEWARE)

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        if self.serves(environ):
            response: Iterable[bytes] = self.handler(environ, start_response)
            return response
        return self.application(environ, start_response)

    def serves(self, environ: WSGIEnviron) -> bool:
        """Whether the request is one of the routes in the plain form the lean path answers."""
        if (
            "HTTP_COOKIE" in environ
            or environ.get("QUERY_STRING")
            or environ.get("HTTP_ACCEPT") not in PLAIN_ACCEPT
            or not settings.LEAN_ROUTES_ENABLED
            or tracing.enabled()
        ):
            return False
        method = environ.get("REQUEST_METHOD")
        path_info = None
        for route in self.routes:
            if route.method != method:
                continue
            if path_info is None:
                path_info = get_path_info(environ) or "/"
            if route.regex.match(path_info) is None:
                continue
            if route.json_body:
                length = environ.get("CONTENT_LENGTH") or ""
                content_type = environ.get("CONTENT_TYPE") or ""
                return (
                    length.isascii()
                    and length.isdigit()
                    and content_type.partition(";")[0].strip().lower() == "application/json"
                )
            return "CONTENT_LENGTH" not in environ or environ["CONTENT_LENGTH"] in ("", "0")
        return False
