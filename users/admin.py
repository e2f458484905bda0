"""Admin pages of the platform's users (read-mostly; sessions are managed through the API)."""

from django.contrib import admin

from users.models import User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("user_id", "username", "email", "status", "updated_at")
    list_filter = ("status",)
    search_fields = ("username__startswith", "email_key__startswith")
    readonly_fields = ("created_at", "updated_at")
    ordering = ("username", "user_id")
