"""Request bodies of the users endpoints (docs/api.md §8), validated strictly: wrong types are a 422.

body = validated(UserCreateIn, request.data)   # core.errors.validated
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from core.values import check_free_json, check_id

#: A user id the routes need for themselves (/users/sessions/...).
RESERVED_USER_IDS = frozenset({"sessions"})


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain U+0000")
    return value


def _user_id(value: str) -> str:
    check_id(value)
    if value in RESERVED_USER_IDS:
        raise ValueError(f"{value!r} is reserved")
    return value


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValueError("must be a valid email address") from None
    return value


def _free_json(value: dict[str, Any]) -> dict[str, Any]:
    check_free_json(value)
    return value


UserId = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_user_id)]
Username = Annotated[str, Field(min_length=1, max_length=150), AfterValidator(_no_nul)]
Email = Annotated[str | None, Field(max_length=254), AfterValidator(_email)]
DisplayName = Annotated[str, Field(max_length=255), AfterValidator(_no_nul)]
Status = Literal["active", "disabled"]
FreeJSON = Annotated[dict[str, Any], AfterValidator(_free_json)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class UserCreateIn(_Strict):
    user_id: UserId | None = Field(default=None, description="Assigned (a UUID) when omitted.")
    username: Username
    email: Email = None
    display_name: DisplayName = ""
    status: Status = "active"
    preferences: FreeJSON = Field(default_factory=dict)


def _optional(description: str) -> Any:
    """A field a PATCH may leave out but not send as null; the schema shows no ``default: null``."""
    return Field(
        default=None, description=description, json_schema_extra=lambda schema: schema.pop("default", None)
    )


class UserUpdateIn(_Strict):
    username: Username = _optional("1-150 characters, unique.")
    email: Email = Field(default=None, description="null removes the email.")
    display_name: DisplayName = _optional("0-255 characters.")
    status: Status = _optional("active or disabled; a disabled user's tokens are refused at once.")
    preferences: FreeJSON = _optional("Replaced whole.")

    @field_validator("username", "display_name", "status", "preferences", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value


class SessionCreateIn(_Strict):
    ttl_seconds: int | None = Field(default=None, description="Default USER_SESSION_TTL (86,400 s).")
    ip: Annotated[str, Field(max_length=64), AfterValidator(_no_nul)] | None = None
    user_agent: Annotated[str, Field(max_length=512), AfterValidator(_no_nul)] | None = None
    data: FreeJSON = Field(default_factory=dict)

    @field_validator("ttl_seconds")
    @classmethod
    def _ttl_in_range(cls, value: int | None) -> int | None:
        low, high = settings.USER_SESSION_MIN_TTL, settings.USER_SESSION_MAX_TTL
        if value is not None and not low <= value <= high:
            raise ValueError(f"must be between {low} and {high} seconds")
        return value


class ValidateIn(_Strict):
    token: Annotated[str, Field(min_length=1, max_length=256)]
    touch: bool = False
