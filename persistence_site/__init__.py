"""The Persistence Service Django project."""

from system import metrics_files

metrics_files.configure()  # before any metric exists (Celery, Django and gunicorn import this first)

from core import __version__  # noqa: E402
from persistence_site.celery import app as celery_app  # noqa: E402

__all__ = ["__version__", "celery_app"]
