"""The embedded default: SQLite, the write buffer a table in it, unless DATABASE_URL / REDIS_URL say otherwise.

For one machine (a laptop, a small team) or for trying the API; production uses ``settings.production``.
"""

from persistence_site.config import LOG_FORMATS, choice
from persistence_site.settings.base import *  # noqa: F403
from persistence_site.settings.base import LOGGING, env

DEBUG = env.bool("DEBUG", default=True)
LOG_FORMAT = choice(env, "LOG_FORMAT", LOG_FORMATS, "console")
LOGGING["handlers"]["default"]["formatter"] = LOG_FORMAT
