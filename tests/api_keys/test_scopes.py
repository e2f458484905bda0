"""The scope rules: parsing, what each scope allows, which scope a request needs."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from api_keys.scopes import parse_scopes, required_scope, scopes_allow


def test_scopes_are_parsed_into_canonical_order_without_duplicates():
    assert parse_scopes(" Write,read,write ") == ("read", "write")


@pytest.mark.parametrize("value", ["read,superuser", "", " , "])
def test_unknown_or_missing_scopes_are_refused(value):
    with pytest.raises(ValidationError):
        parse_scopes(value)


@pytest.mark.parametrize(
    ("held", "required", "allowed"),
    [
        (["read"], "read", True),
        (["read"], "write", False),
        (["write"], "write", True),
        (["write"], "read", False),  # write does not imply read (documented in api_keys.scopes)
        (["read", "write"], "admin", False),
        (["admin"], "read", True),
        (["admin"], "write", True),
        (["admin"], "admin", True),
        (["write"], "any", True),
    ],
)
def test_what_each_scope_allows(held, required, allowed):
    assert scopes_allow(held, required) is allowed


class _Undeclared:
    pass


class _Declared:
    required_scope = "admin"


class _PerMethod:
    required_scope = {"GET": "read", "DELETE": "admin"}


@pytest.mark.parametrize(
    ("method", "view", "scope"),
    [
        ("GET", _Undeclared(), "read"),
        ("HEAD", _Undeclared(), "read"),
        ("OPTIONS", _Undeclared(), "read"),
        ("POST", _Undeclared(), "write"),
        ("PATCH", _Undeclared(), "write"),
        ("DELETE", _Undeclared(), "write"),
        ("GET", _Declared(), "admin"),
        ("GET", _PerMethod(), "read"),
        ("DELETE", _PerMethod(), "admin"),
        ("PUT", _PerMethod(), "write"),  # not in the mapping: the default rule
    ],
)
def test_required_scope_follows_the_declaration_or_the_method(method, view, scope):
    assert required_scope(method, view) == scope


def test_a_misspelt_declaration_is_a_configuration_error():
    class Misspelt:
        required_scope = "wirte"

    with pytest.raises(ImproperlyConfigured, match="wirte"):
        required_scope("GET", Misspelt())
