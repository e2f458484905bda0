"""The hook point for audit events of users (docs/api.md §9), sent once the change is committed.

The audit capability is not built yet; when it is, its app connects a receiver here and writes
one event per signal. Until then no receiver is connected and sending does nothing.

    user_audit_event.connect(receiver)   # receiver(sender, action, resource_type, resource_id, actor)
"""

from django.dispatch import Signal

#: Sent for "user.create", "user.update", "user.delete" and "user_session.end" (one per session
#: ended, or one with resource_type "user" for "user_session.end_all").
user_audit_event = Signal()
