"""OpenAPI shapes every app shares (documentation only): the contract's error body.

@extend_schema(responses={400: OpenApiResponse(ErrorOut, description="INVALID_QUERY")})
"""

from __future__ import annotations

from rest_framework import serializers


class ErrorOut(serializers.Serializer):
    detail = serializers.CharField()
    error_code = serializers.CharField()
    errors = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))
