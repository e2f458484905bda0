"""Validation of the client fields of an upload (docs/api.md §7): 422 listing each bad field.

fields = validate_upload_url(body)            # JSON body of POST upload-url
fields = validate_form(request.POST)          # form fields of POST upload
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from core.errors import RequestValidationError, validated, validation_errors
from core.values import check_free_json, check_id
from files.services import FileFields

MIN_EXPIRES_IN, MAX_EXPIRES_IN = 60, 31_536_000
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _printable(value: str) -> str:
    """Filenames and content types go into response headers: no control characters."""
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


Filename = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_printable)]
ContentType = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_printable)]
SessionId = Annotated[str, Field(min_length=1, max_length=36), AfterValidator(check_id)]
Metadata = Annotated[dict[str, Any], AfterValidator(check_free_json)]
ExpiresIn = Annotated[int, Field(ge=MIN_EXPIRES_IN, le=MAX_EXPIRES_IN)]
Kind = Literal["source", "result", "other"]


class UploadFieldsIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    kind: Kind = "other"
    session_id: SessionId | None = None
    metadata: Metadata = Field(default_factory=dict)
    expires_in: ExpiresIn | None = None


class UploadUrlIn(UploadFieldsIn):
    filename: Filename
    size: Annotated[int, Field(ge=0)]
    content_type: ContentType = "application/octet-stream"
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


#: Built once: building a TypeAdapter compiles a pydantic schema (about a millisecond a request).
_FILENAME = TypeAdapter(Filename)


def check_filename(filename: str) -> None:
    """The name of an uploaded part: 1-255 characters, no control characters (422 otherwise)."""
    try:
        _FILENAME.validate_python(filename)
    except ValidationError as exc:
        messages = [error["msg"] for error in exc.errors(include_url=False, include_input=False)]
        raise RequestValidationError(
            errors=[{"field": "file.filename", "message": m} for m in messages]
        ) from None


def validate_upload_url(body: Any, *, max_size: int) -> FileFields:
    data = validated(UploadUrlIn, body)
    if data.size > max_size:
        raise RequestValidationError(
            errors=[{"field": "size", "message": f"must be at most {max_size} (FILES_MAX_UPLOAD_BYTES)"}]
        )
    return FileFields(**data.model_dump())


def validate_form(form: Mapping[str, str]) -> FileFields:
    """The optional form fields of a multipart upload (strings on the wire, converted here)."""
    values: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for name in form:
        if name not in UploadFieldsIn.model_fields:
            errors.append({"field": name, "message": "unknown field"})
    for name in ("kind", "session_id"):
        if name in form:
            values[name] = form[name]
    if "metadata" in form:
        try:
            values["metadata"] = orjson.loads(form["metadata"])
        except orjson.JSONDecodeError:
            errors.append({"field": "metadata", "message": "must be a JSON object (as text)"})
    if "expires_in" in form:
        raw = form["expires_in"]
        if re.fullmatch(r"[0-9]{1,12}", raw):
            values["expires_in"] = int(raw)
        else:
            errors.append({"field": "expires_in", "message": "must be a whole number of seconds"})
    if not errors:
        try:
            return FileFields(**UploadFieldsIn.model_validate(values).model_dump())
        except ValidationError as exc:
            errors.extend(validation_errors(exc))
    raise RequestValidationError(errors=errors)
