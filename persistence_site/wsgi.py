"""WSGI entry point (gunicorn persistence_site.wsgi).

Token validation and user reads take the lean path (core.lean, users.api.lean): the same answers
as the full stack for a fraction of its CPU; everything else goes to Django unchanged.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "persistence_site.settings.production")

django_application = get_wsgi_application()

from core.lean import LeanRoutes  # noqa: E402  (needs the app registry)
from system.checks import log_missing_static_files  # noqa: E402
from users.api import lean as users_lean  # noqa: E402

application = LeanRoutes(django_application, users_lean.routes(prefix="/api/v1/"))

log_missing_static_files()
