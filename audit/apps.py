"""The audit app: who did what, when, to which resource (docs/api.md §9)."""

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from audit.validation import AuditEventIn
        from storage_backends.catalog import Collection, declare

        # Append-only: the first accepted write of an event id is kept.
        declare(
            Collection(
                "audit_logs",
                model="audit.AuditEvent",
                id_field="event_id",
                item_type="audit_log",
                keep_first=True,
                schema=AuditEventIn,
            )
        )
