"""The Persistence Service Django project."""

from persistence_site import metrics_files

metrics_files.configure()  # before any metric exists (Celery, Django and gunicorn import this first)

from persistence_site.celery import app as celery_app  # noqa: E402

__version__ = "1.0.0"
__all__ = ["__version__", "celery_app"]
