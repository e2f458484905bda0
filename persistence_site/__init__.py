"""The Persistence Service Django project."""

from persistence_site.celery import app as celery_app

__version__ = "1.0.0"
__all__ = ["__version__", "celery_app"]
