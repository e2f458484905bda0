"""Validation cost of a 1000-task batch: DRF serializers (per-item) versus pydantic v2 (what the
service uses). Prints milliseconds per batch.

    .venv/bin/python bench/validation.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "persistence_site.settings.local")

import django

django.setup()

from rest_framework import serializers  # noqa: E402

from tests.factories import task_record  # noqa: E402
from translation.validation import validate_batch  # noqa: E402


class TaskSerializer(serializers.Serializer):
    """The same rules as translation.validation.TaskIn, written the DRF way."""

    task_id = serializers.CharField(min_length=1, max_length=64)
    session_id = serializers.CharField(min_length=1, max_length=36)
    batch_id = serializers.CharField(min_length=1, max_length=64)
    sheet_name = serializers.CharField(min_length=1, max_length=255)
    row_index = serializers.IntegerField(min_value=0)
    column_name = serializers.CharField(min_length=1, max_length=255)
    source_text = serializers.CharField(allow_blank=True, max_length=100_000, trim_whitespace=False)
    target_text = serializers.CharField(
        allow_null=True, required=False, max_length=100_000, trim_whitespace=False
    )
    context = serializers.CharField(
        allow_null=True, required=False, max_length=100_000, trim_whitespace=False
    )
    status = serializers.ChoiceField(choices=["pending", "processing", "completed", "failed"])
    confidence = serializers.DecimalField(max_digits=5, decimal_places=4, allow_null=True, required=False)
    error_message = serializers.CharField(allow_null=True, required=False, trim_whitespace=False)
    retry_count = serializers.IntegerField(min_value=0, required=False)
    start_time = serializers.DateTimeField(allow_null=True, required=False)
    end_time = serializers.DateTimeField(allow_null=True, required=False)
    duration_ms = serializers.IntegerField(min_value=0, allow_null=True, required=False)


class BatchSerializer(serializers.Serializer):
    tasks = TaskSerializer(many=True)


def timed(label: str, func, rounds: int = 20) -> float:
    func()
    started = time.perf_counter()
    for _ in range(rounds):
        func()
    ms = (time.perf_counter() - started) / rounds * 1000
    print(f"{label:<28} {ms:8.2f} ms per 1000-task batch")
    return ms


def main() -> None:
    body = {
        "tasks": [
            task_record("s-1", status="completed", confidence=0.91, start_time="2025-09-30T10:15:30Z")
            for _ in range(1000)
        ]
    }

    def drf() -> None:
        serializer = BatchSerializer(data=body)
        assert serializer.is_valid(), serializer.errors

    drf_ms = timed("DRF serializer (many=True)", drf)
    pyd_ms = timed("pydantic v2 (validate+dump)", lambda: validate_batch(body, kind="tasks"))
    print(f"pydantic is {drf_ms / pyd_ms:.1f}x faster")


if __name__ == "__main__":
    main()
