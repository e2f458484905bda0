"""System checks of the service's deployment (``manage.py check --deploy``), also logged at start-up.

The admin and the API docs (Swagger UI, ReDoc) load their CSS and JavaScript from ``STATIC_ROOT``,
which ``manage.py collectstatic`` fills; WhiteNoise serves it from gunicorn. Without it those pages
render unstyled or blank while the API itself works, which is easy to miss.

    python manage.py check --deploy     # system.E001 when static files were not collected
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import checks

logger = logging.getLogger(__name__)

#: Files every page of the admin and the API docs needs; if they are there, collectstatic ran.
REQUIRED_STATIC_FILES = (
    "admin/css/base.css",
    "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
    "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js",
)


def missing_static_files() -> list[str]:
    """The required static files absent from ``STATIC_ROOT`` (none when WhiteNoise serves them
    straight from the apps, as in the tests and in DEBUG)."""
    if settings.DEBUG or getattr(settings, "WHITENOISE_USE_FINDERS", False) or not settings.STATIC_ROOT:
        return []
    root = Path(settings.STATIC_ROOT)
    return [name for name in REQUIRED_STATIC_FILES if not (root / name).is_file()]


@checks.register(checks.Tags.staticfiles, deploy=True)
def static_files_collected(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    missing = missing_static_files()
    if not missing:
        return []
    return [
        checks.Error(
            f"Static files are not collected in STATIC_ROOT ({settings.STATIC_ROOT}): missing {', '.join(missing)}. "
            "The admin would render unstyled and /api/docs/ blank.",
            hint="Run `python manage.py collectstatic --noinput` (once per release, like migrate).",
            id="system.E001",
        )
    ]


def log_missing_static_files() -> None:
    """At web start-up: say it in the log rather than serve broken pages silently."""
    for message in static_files_collected():
        logger.error("%s %s", message.msg, message.hint)
