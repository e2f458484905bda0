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
from api_keys.services import api_key_audit

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
        keys = list(queryset.filter(revoked=False))
        count = APIKey.objects.filter(pk__in=[k.pk for k in keys], revoked=False).update(revoked=True)
        for api_key in keys:
            api_key_audit(action="api_key.revoke", api_key=api_key)
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)

    def save_model(self, request: HttpRequest, obj: APIKey, form: Any, change: bool) -> None:
        """The library's save (which shows a new key once), audited: a new key is ``api_key.create``,
        a key newly marked revoked is ``api_key.revoke``."""
        was_revoked = change and APIKey.objects.filter(pk=obj.pk, revoked=True).exists()
        super().save_model(request, obj, form, change)
        if not change:
            api_key_audit(action="api_key.create", api_key=obj)
        elif obj.revoked and not was_revoked:
            api_key_audit(action="api_key.revoke", api_key=obj)
