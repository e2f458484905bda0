"""Admin pages of the platform's users. Saves and deletes go through users.services, so the read
cache is invalidated, sessions of a deleted user end, and the audit hook is sent, as through the API.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from core.errors import ServiceError
from core.exceptions import ServiceException
from users.models import User
from users.services import UPDATABLE, user_create, user_delete, user_update


class UserForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["user_id", "username", "email", "display_name", "status", "preferences"]

    def clean_email(self) -> str | None:
        email = self.cleaned_data.get("email") or None
        if email is not None:
            taken = User.objects.filter(email_key=email.lower()).exclude(user_id=self.instance.user_id)
            if taken.exists():
                raise forms.ValidationError("Another user has this email (compared case-insensitively).")
        return email


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    form = UserForm
    list_display = ("user_id", "username", "email", "status", "updated_at")
    list_filter = ("status",)
    search_fields = ("username__istartswith", "email_key__istartswith")
    readonly_fields = ("created_at", "updated_at")
    ordering = ("username", "user_id")

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple[str, ...]:
        return (*self.readonly_fields, "user_id") if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        actor = request.user.get_username()
        try:
            if change:
                changes = {name: form.cleaned_data[name] for name in form.changed_data if name in UPDATABLE}
                saved = user_update(user_id=obj.user_id, changes=changes, actor=actor)
            else:
                fields = {name: form.cleaned_data[name] for name in ("user_id", *UPDATABLE)}
                saved = user_create(**fields, actor=actor)
        except (ServiceError, ServiceException) as exc:  # a race the form's checks could not see
            raise forms.ValidationError(str(exc.detail)) from exc
        obj.pk = saved["user_id"]

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        user_delete(user_id=obj.user_id, actor=request.user.get_username())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for user_id in queryset.values_list("user_id", flat=True):
            user_delete(user_id=user_id, actor=request.user.get_username())
