"""The lean routes of the users app (core.lean): token validation and user reads, the hottest
calls of the platform (every request of a logged-in user validates its token).

Each answers exactly as its DRF view (users.api.views) does, with the same work function and the
same authentication, scope, error and rendering functions (api_keys.lean); requests that are not
plain (HEAD, OPTIONS, a query string, a cookie, another Accept or Content-Type) go to the DRF view.

    application = LeanRoutes(django_application, routes(prefix="/api/v1/"))
"""

from __future__ import annotations

from typing import Any

from api_keys.lean import lean_api_view
from core.lean import LeanRoute
from users.api.views import UserDetailView, ValidateView, token_validate, user_read


def _validate(request: Any, body: Any) -> dict[str, Any]:
    return token_validate(body)


def _user(request: Any, user_id: str) -> dict[str, Any]:
    return user_read(user_id)


def routes(*, prefix: str) -> list[LeanRoute]:
    """The routes as users.urls declares them, included under ``prefix`` (``/api/v1/``)."""
    mount = prefix.strip("/") + "/"
    return [
        LeanRoute(
            "POST",
            f"/{mount}users/sessions/validate",
            lean_api_view(ValidateView, _validate, body=True),
            "users:session-validate",
            f"{mount}users/sessions/validate",
            json_body=True,
        ),
        LeanRoute(
            "GET",
            f"/{mount}users/(?P<user_id>[^/]+)",  # <str:user_id>: anything but a slash
            lean_api_view(UserDetailView, _user),
            "users:user-detail",
            f"{mount}users/<str:user_id>",
        ),
    ]
