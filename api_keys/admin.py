"""Admin for API keys: create (the key is shown once, in a message), set scopes, revoke.

The library's own admin (for its scope-less model) is unregistered so there is one "API keys" page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey as LibraryAPIKey

from api_keys.models import APIKey
from api_keys.scopes import SCOPES, parse_scopes

if admin.site.is_registered(LibraryAPIKey):
    admin.site.unregister(LibraryAPIKey)


class APIKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="admin may do everything; write does not imply read.",
    )

    class Meta:
        model = APIKey
        fields = ["name", "scopes", "expiry_date", "revoked"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["scopes"] = list(self.instance.scope_list)

    def clean_scopes(self) -> str:
        return ",".join(parse_scopes(self.cleaned_data["scopes"]))


@admin.register(APIKey)
class APIKeyAdmin(APIKeyModelAdmin):
    form = APIKeyForm
    list_display = ("prefix", "name", "scopes", "created", "expiry_date", "_has_expired", "revoked")
    list_filter = ("revoked", "created")
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and obj.revoked:
            fields = (*fields, "scopes")
        return fields

    @admin.action(description="Revoke the selected API keys (cannot be undone)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> None:
        count = queryset.filter(revoked=False).update(revoked=True)
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)
