"""Celery application: the flush worker and the beat schedule.

Run a worker with ``celery -A persistence_site worker`` and exactly one scheduler with
``celery -A persistence_site beat``. Configuration comes from Django settings (``CELERY_*``).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "persistence_site.settings.production")

app = Celery("persistence_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
