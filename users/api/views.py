"""The users endpoints (docs/api.md §8). Thin: validate, call one service or selector, answer.

POST   /api/v1/users                                 write    GET /api/v1/users              read
GET    /api/v1/users/<user_id>                       read     PATCH (write), DELETE (admin)
POST   /api/v1/users/<user_id>/sessions              write    GET (read), DELETE (write)
POST   /api/v1/users/sessions/validate               read
GET    /api/v1/users/sessions/<session_id>           read     DELETE (write)
POST   /api/v1/users/sessions/<session_id>/refresh   write
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import validated
from core.openapi import ErrorOut
from core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from users import selectors, services
from users.validation import SessionCreateIn, UserCreateIn, UserUpdateIn, ValidateIn

TAGS = ["users"]


class UserOut(serializers.Serializer):
    user_id = serializers.CharField()
    username = serializers.CharField()
    email = serializers.CharField(allow_null=True)
    display_name = serializers.CharField()
    status = serializers.ChoiceField(choices=["active", "disabled"])
    preferences = serializers.DictField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class UserSessionOut(serializers.Serializer):
    session_id = serializers.CharField()
    user_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    ttl_seconds = serializers.IntegerField()
    ip = serializers.CharField(allow_null=True)
    user_agent = serializers.CharField(allow_null=True)
    data = serializers.DictField()


class UserSessionCreatedOut(UserSessionOut):
    token = serializers.CharField(help_text="Shown only here; the service keeps only its sha256.")


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorOut, description=description)


BAD_BODY = {
    400: _error("Body is not JSON or not an object (MALFORMED_JSON)."),
    422: _error("A field is missing, unknown or invalid (VALIDATION_ERROR)."),
}
CONFLICT = _error("CONFLICT: `errors` names the taken field (user_id, username or email).")
USER_404 = _error("Unknown user (NOT_FOUND, with user_id).")
SESSION_404 = _error("Unknown, expired or ended user session (NOT_FOUND).")
UNAVAILABLE = _error("The user-session Redis (or the database) is unreachable (STORAGE_UNAVAILABLE).")
UserPageOut = inline_serializer(
    "UserPage",
    {
        "total": serializers.IntegerField(),
        "page": serializers.IntegerField(),
        "page_size": serializers.IntegerField(),
        "total_pages": serializers.IntegerField(),
        "items": UserOut(many=True),
    },
)


def _actor(request: Request) -> str | None:
    return getattr(request.auth, "name", None)


def _body(request: Request, default: Any = None) -> Any:
    return request.data if request.stream is not None else default


# The work of the two hottest endpoints, shared with their lean views (users.api.lean).
def token_validate(body: Any) -> dict[str, Any]:
    """POST /users/sessions/validate: the body (None when empty) checked, the token validated."""
    checked = validated(ValidateIn, body)
    return services.user_session_validate(token=checked.token, touch=checked.touch)


def user_read(user_id: str) -> dict[str, Any]:
    """GET /users/<user_id>."""
    return selectors.user_get(user_id=user_id)


class UserListView(APIView):
    required_scope = {"GET": "read", "POST": "write"}

    @extend_schema(
        tags=TAGS,
        summary="List users",
        operation_id="v1_users_list",
        description="Ordered by username, ties by user_id. `q`: prefix of the username or (case-insensitively) "
        "of the email.",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=["active", "disabled"]),
            OpenApiParameter("q", OpenApiTypes.STR),
            OpenApiParameter("page", int, default=1),
            OpenApiParameter("page_size", int, description=f"1-{MAX_PAGE_SIZE}.", default=DEFAULT_PAGE_SIZE),
        ],
        responses={200: UserPageOut, 400: _error("INVALID_QUERY")},
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.users_page(query=request.query_params))

    @extend_schema(
        tags=TAGS,
        summary="Create a user",
        operation_id="v1_users_create",
        request=UserCreateIn,
        responses={201: UserOut, **BAD_BODY, 409: CONFLICT, 503: UNAVAILABLE},
    )
    def post(self, request: Request) -> Response:
        body = validated(UserCreateIn, _body(request))
        user = services.user_create(**body.model_dump(), actor=_actor(request))
        return Response(user, status=status.HTTP_201_CREATED)


class UserDetailView(APIView):
    required_scope = {"GET": "read", "PATCH": "write", "DELETE": "admin"}

    @extend_schema(
        tags=TAGS, summary="A user", operation_id="v1_users_get", responses={200: UserOut, 404: USER_404}
    )
    def get(self, request: Request, user_id: str) -> Response:
        return Response(user_read(user_id))

    @extend_schema(
        tags=TAGS,
        summary="Change a user",
        operation_id="v1_users_update",
        description="Only the fields sent change; preferences is replaced whole.",
        request=UserUpdateIn,
        responses={200: UserOut, **BAD_BODY, 404: USER_404, 409: CONFLICT, 503: UNAVAILABLE},
    )
    def patch(self, request: Request, user_id: str) -> Response:
        body = validated(UserUpdateIn, _body(request))
        changes = body.model_dump(include=body.model_fields_set)
        return Response(services.user_update(user_id=user_id, changes=changes, actor=_actor(request)))

    @extend_schema(
        tags=TAGS,
        summary="Delete a user",
        operation_id="v1_users_delete",
        description="Ends all of the user's sessions, then deletes the user. Scope admin.",
        responses={
            200: inline_serializer(
                "UserDeleted",
                {
                    "status": serializers.CharField(),
                    "user_id": serializers.CharField(),
                    "ended_sessions": serializers.IntegerField(),
                },
            ),
            404: USER_404,
            503: UNAVAILABLE,
        },
    )
    def delete(self, request: Request, user_id: str) -> Response:
        return Response(services.user_delete(user_id=user_id, actor=_actor(request)))


class UserSessionsView(APIView):
    required_scope = {"GET": "read", "POST": "write", "DELETE": "write"}

    @extend_schema(
        tags=TAGS,
        summary="Start a user session",
        operation_id="v1_users_sessions_create",
        description="At most USER_SESSIONS_PER_USER live sessions: the one expiring soonest makes room.",
        request=SessionCreateIn,
        responses={
            201: UserSessionCreatedOut,
            **BAD_BODY,
            404: USER_404,
            409: _error("The user is disabled (CONFLICT)."),
            503: UNAVAILABLE,
        },
    )
    def post(self, request: Request, user_id: str) -> Response:
        body = validated(SessionCreateIn, _body(request, {}))
        session = services.user_session_create(user_id=user_id, **body.model_dump())
        return Response(session, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=TAGS,
        summary="A user's live sessions",
        operation_id="v1_users_sessions_list",
        responses={
            200: inline_serializer(
                "UserSessionList",
                {"count": serializers.IntegerField(), "sessions": UserSessionOut(many=True)},
            ),
            404: USER_404,
            503: UNAVAILABLE,
        },
    )
    def get(self, request: Request, user_id: str) -> Response:
        return Response(selectors.user_sessions_list(user_id=user_id))

    @extend_schema(
        tags=TAGS,
        summary="End all of a user's sessions",
        operation_id="v1_users_sessions_end_all",
        responses={
            200: inline_serializer("UserSessionsEnded", {"deleted": serializers.IntegerField()}),
            404: USER_404,
            503: UNAVAILABLE,
        },
    )
    def delete(self, request: Request, user_id: str) -> Response:
        return Response(services.user_sessions_end_all(user_id=user_id, actor=_actor(request)))


class ValidateView(APIView):
    required_scope = "read"

    @extend_schema(
        tags=TAGS,
        summary="Validate a token",
        operation_id="v1_users_sessions_validate",
        description="touch: true slides expires_at by the session's ttl. 404 for an unknown, expired or "
        "ended token, or a disabled user.",
        request=ValidateIn,
        responses={
            200: inline_serializer("TokenValid", {"session": UserSessionOut(), "user": UserOut()}),
            **BAD_BODY,
            404: SESSION_404,
            503: UNAVAILABLE,
        },
    )
    def post(self, request: Request) -> Response:
        return Response(token_validate(_body(request)))


class UserSessionDetailView(APIView):
    required_scope = {"GET": "read", "DELETE": "write"}

    @extend_schema(
        tags=TAGS,
        summary="A user session",
        operation_id="v1_user_session_get",
        responses={200: UserSessionOut, 404: SESSION_404, 503: UNAVAILABLE},
    )
    def get(self, request: Request, session_id: str) -> Response:
        return Response(selectors.user_session_get(session_id=session_id))

    @extend_schema(
        tags=TAGS,
        summary="End a user session",
        operation_id="v1_user_session_end",
        responses={
            200: inline_serializer(
                "UserSessionEnded", {"status": serializers.CharField(), "session_id": serializers.CharField()}
            ),
            404: SESSION_404,
            503: UNAVAILABLE,
        },
    )
    def delete(self, request: Request, session_id: str) -> Response:
        return Response(services.user_session_end(session_id=session_id, actor=_actor(request)))


class RefreshView(APIView):
    required_scope = "write"

    @extend_schema(
        tags=TAGS,
        summary="Refresh a user session",
        operation_id="v1_user_session_refresh",
        request=None,
        responses={200: UserSessionOut, 404: SESSION_404, 503: UNAVAILABLE},
    )
    def post(self, request: Request, session_id: str) -> Response:
        return Response(services.user_session_refresh(session_id=session_id))
