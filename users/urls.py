"""Routes under /api/v1/users (docs/api.md §8). ``sessions`` is a reserved user id, so the fixed
``sessions/...`` routes never shadow a user."""

from django.urls import path

from users.api.views import (
    RefreshView,
    UserDetailView,
    UserListView,
    UserSessionDetailView,
    UserSessionsView,
    ValidateView,
)

app_name = "users"

urlpatterns = [
    path("users", UserListView.as_view(), name="user-list"),
    path("users/sessions/validate", ValidateView.as_view(), name="session-validate"),
    path("users/sessions/<str:session_id>/refresh", RefreshView.as_view(), name="session-refresh"),
    path("users/sessions/<str:session_id>", UserSessionDetailView.as_view(), name="session-detail"),
    path("users/<str:user_id>/sessions", UserSessionsView.as_view(), name="user-sessions"),
    path("users/<str:user_id>", UserDetailView.as_view(), name="user-detail"),
]
