"""The contract's error body for API errors, unknown URLs and malformed JSON."""

from __future__ import annotations

import pytest
from django.urls import path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import InvalidQuery, flatten_errors
from core.exceptions import BufferFull


class _Echo(APIView):
    """A tiny endpoint standing in for the API's own, to exercise parsing and errors."""

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=3)

    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(data.validated_data)

    def get(self, request):
        if "full" in request.query_params:
            raise BufferFull()
        raise InvalidQuery("page must be at least 1", errors=[{"field": "page", "message": "must be >= 1"}])


urlpatterns = [path("api/v1/echo", _Echo.as_view())]
pytestmark = pytest.mark.urls(__name__)


def _assert_error_shape(body: dict, code: str) -> None:
    assert set(body) >= {"detail", "error_code", "errors"}
    assert body["error_code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], list)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2", b"\xff\xfe"])
def test_malformed_json_is_400_malformed_json(api_client, body):
    response = api_client.post("/api/v1/echo", body, content_type="application/json")

    assert response.status_code == 400
    _assert_error_shape(response.json(), "MALFORMED_JSON")


def test_validation_error_is_422_with_flat_field_errors(api_client):
    response = api_client.post("/api/v1/echo", {"name": "toolong"}, format="json")

    assert response.status_code == 422
    body = response.json()
    _assert_error_shape(body, "VALIDATION_ERROR")
    assert body["errors"][0]["field"] == "name"


def test_service_error_carries_its_code_and_errors(api_client):
    response = api_client.get("/api/v1/echo")

    assert response.status_code == 400
    body = response.json()
    _assert_error_shape(body, "INVALID_QUERY")
    assert body["errors"] == [{"field": "page", "message": "must be >= 1"}]


def test_unavailable_error_sets_retry_after(api_client):
    response = api_client.get("/api/v1/echo?full=1")

    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    _assert_error_shape(response.json(), "BUFFER_FULL")


def test_method_not_allowed_is_in_the_error_shape(api_client):
    response = api_client.delete("/api/v1/echo")

    assert response.status_code == 405
    _assert_error_shape(response.json(), "METHOD_NOT_ALLOWED")


def test_flatten_errors_names_nested_list_items_by_index():
    detail = {"tasks": {3: {"status": ["bad choice"]}}, "non_field_errors": ["x"]}

    assert flatten_errors(detail) == [
        {"field": "tasks[3].status", "message": "bad choice"},
        {"field": "", "message": "x"},
    ]
