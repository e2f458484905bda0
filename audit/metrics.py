"""Prometheus counters of the audit app: the service's own events, recorded or lost.

metrics.EVENTS_DROPPED.inc()
"""

from __future__ import annotations

from prometheus_client import Counter

#: The service's own events that could not be buffered (the operation went on without them).
EVENTS_DROPPED = Counter(
    "persistence_audit_events_dropped",
    "Audit events of the service's own operations that could not be buffered (logged instead).",
)
EVENTS_RECORDED = Counter(
    "persistence_audit_events_recorded", "Audit events of the service's own operations buffered."
)
