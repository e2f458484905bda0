"""OpenAPI descriptions of the recovery answers (documentation only); sessions and tasks are
translation.openapi's.

    @extend_schema(responses={200: RestoreOut})
"""

from __future__ import annotations

from rest_framework import serializers

from translation.openapi import SessionDetailOut, SessionSummaryOut, TaskOut


class IncompleteSessionsOut(serializers.Serializer):
    count = serializers.IntegerField()
    sessions = SessionSummaryOut(many=True)


class RestoreOut(serializers.Serializer):
    session_id = serializers.CharField()
    session = SessionDetailOut()
    tasks_count = serializers.IntegerField(help_text="Equals the length of tasks.")
    tasks = TaskOut(many=True)
    restored_at = serializers.DateTimeField()


class RecoveryBufferedOut(serializers.Serializer):
    sessions = serializers.IntegerField(allow_null=True)
    tasks = serializers.IntegerField(allow_null=True)
    total = serializers.IntegerField(allow_null=True)


class RecoveryStorageOut(serializers.Serializer):
    database = serializers.CharField(help_text='"healthy" or "unhealthy"')
    buffer = serializers.CharField(help_text='"healthy" or "unhealthy" (the buffer store, Redis)')
    object_store = serializers.CharField(
        help_text='"healthy" or "unhealthy": the object store of the files app (not part of ready)'
    )


class RecoveryStatusOut(serializers.Serializer):
    ready = serializers.BooleanField(help_text="Database and buffer store both reachable.")
    incomplete_sessions = serializers.IntegerField(
        allow_null=True,
        help_text="Pending or processing sessions, buffered ones included; null if the database is down.",
    )
    buffered = RecoveryBufferedOut(help_text="Records accepted and not yet flushed; null when Redis is down.")
    retrying = serializers.IntegerField(
        allow_null=True,
        help_text="Buffered records that failed a flush attempt with an error not known to be permanent; "
        "retried at the next flushes and dead-lettered after FLUSH_MAX_ATTEMPTS. Null when the buffer "
        "store is down.",
    )
    last_flush = serializers.DateTimeField(allow_null=True)
    dead_letters = serializers.IntegerField(
        allow_null=True, help_text="Records the database refused and nobody re-queued yet."
    )
    storage = RecoveryStorageOut()
    checked_at = serializers.DateTimeField()
