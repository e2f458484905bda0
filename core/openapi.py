"""OpenAPI shapes every app shares (documentation only): the contract's error body, and answer
components derived from a record's validation schema.

@extend_schema(responses={400: OpenApiResponse(ErrorOut, description="INVALID_QUERY")})
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from rest_framework import serializers


class ErrorOut(serializers.Serializer):
    detail = serializers.CharField()
    error_code = serializers.CharField()
    errors = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))


def serializer_from_schema(
    name: str,
    schema: type[BaseModel],
    *,
    fields: Sequence[str] | None = None,
    extra: Mapping[str, serializers.Field] | None = None,
    base: type[serializers.Serializer] = serializers.Serializer,
) -> type[serializers.Serializer]:
    """A serializer (documentation only) describing records of the pydantic ``schema`` as answered:
    its ``fields`` (default: all, in the schema's order) with their JSON types, choices and
    nullability, then ``extra`` fields the answers add (service timestamps, derived figures). So a
    record's shape is written once, in its validation schema, and its OpenAPI component follows.

        TaskOut = serializer_from_schema("TaskOut", TaskIn, extra={"created_at": DateTimeField()})
    """
    attrs: dict[str, Any] = {
        field_name: _drf_field(schema.model_fields[field_name])
        for field_name in (fields if fields is not None else schema.model_fields)
    }
    attrs.update(extra or {})
    for field in attrs.values():  # DRF orders declared fields by creation: renumber in this order
        field._creation_counter = serializers.Field._creation_counter
        serializers.Field._creation_counter += 1
    attrs["__module__"] = schema.__module__
    return type(name, (base,), attrs)


_SIMPLE_FIELDS: dict[Any, type[serializers.Field]] = {
    int: serializers.IntegerField,
    float: serializers.FloatField,
    bool: serializers.BooleanField,
    dt.datetime: serializers.DateTimeField,
}


def _drf_field(info: FieldInfo) -> serializers.Field:
    annotation = info.annotation
    metadata = list(info.metadata)
    options: dict[str, Any] = {}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(
        annotation
    ):
        options["allow_null"] = True
        (annotation,) = (a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is typing.Annotated:  # a constrained type inside the Optional
        annotation, *extras = typing.get_args(annotation)
        metadata += [m for extra in extras if isinstance(extra, FieldInfo) for m in extra.metadata]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return serializers.ChoiceField(choices=list(typing.get_args(annotation)), **options)
    if annotation is str:
        min_length = max((m.min_length for m in metadata if isinstance(m, annotated_types.MinLen)), default=0)
        return serializers.CharField(allow_blank=min_length == 0, **options)
    if annotation is dict or origin is dict:
        return serializers.DictField(**options)
    if annotation in _SIMPLE_FIELDS:
        return _SIMPLE_FIELDS[annotation](**options)
    raise TypeError(f"No OpenAPI mapping for the field type {info.annotation!r}")
