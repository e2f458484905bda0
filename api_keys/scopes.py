"""API key scopes and the rule that says which scope a request needs (docs/api.md §0).

A view declares ``required_scope`` ("read", "write", "admin", or "any" for any valid key), or a
mapping of HTTP method to scope when one view serves methods of different scopes; without a
declaration GET/HEAD/OPTIONS need ``read`` and every other method ``write``.

    class SessionDetailView(APIView):
        required_scope = {"GET": "read", "DELETE": "admin"}

Implication: ``admin`` may do everything. ``write`` does *not* imply ``read``: a producer that
only pushes batches (an importer, a job runner) should hold a key that cannot read stored texts
back. A client that does both (the translation backend writes progress and reads it back for
recovery) gets ``read,write``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from rest_framework.permissions import SAFE_METHODS

READ = "read"
WRITE = "write"
ADMIN = "admin"
SCOPES = (READ, WRITE, ADMIN)
#: Not a scope a key holds: a view that any valid key may call (the metrics endpoint).
ANY = "any"
_DECLARABLE = (*SCOPES, ANY)


def parse_scopes(value: str | Iterable[str]) -> tuple[str, ...]:
    """Scopes from ``"read,write"`` or a list, validated, without duplicates, in canonical order.

    Raises ``ValidationError`` naming the unknown scopes, or when none is given.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    wanted = {item.strip().lower() for item in items if item and item.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise ValidationError(
            f"Unknown scope(s): {', '.join(unknown)}. Choose from: {', '.join(SCOPES)}.", code="invalid"
        )
    if not wanted:
        raise ValidationError(f"At least one scope is needed: {', '.join(SCOPES)}.", code="required")
    return tuple(scope for scope in SCOPES if scope in wanted)


def scopes_allow(held: Iterable[str], required: str) -> bool:
    """Whether a key holding ``held`` may do what needs ``required`` (admin may do everything)."""
    held = set(held)
    return required == ANY or ADMIN in held or required in held


def required_scope(method: str, view: Any) -> str:
    """The scope a request with ``method`` to ``view`` needs (see the module docstring)."""
    declared = getattr(view, "required_scope", None)
    if isinstance(declared, Mapping):
        declared = declared.get(method.upper())
    if declared is None:
        return READ if method.upper() in SAFE_METHODS else WRITE
    if declared not in _DECLARABLE:
        raise ImproperlyConfigured(
            f"{type(view).__name__}.required_scope is {declared!r}; use one of {', '.join(_DECLARABLE)}"
        )
    return declared
