"""WSGI entry point (gunicorn persistence_site.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "persistence_site.settings.production")

application = get_wsgi_application()

from system.checks import log_missing_static_files  # noqa: E402  (needs the app registry)

log_missing_static_files()
