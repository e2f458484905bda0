"""Production settings: MySQL/MariaDB + Redis, secure by default, and refusal of unsafe values.

Start-up fails with ImproperlyConfigured (naming the setting) when SECRET_KEY is missing or weak,
when DEBUG is on, when DATABASE_URL or REDIS_URL is missing, or when ALLOWED_HOSTS is empty.
"""

from django.core.exceptions import ImproperlyConfigured

from persistence_site.settings.base import *  # noqa: F403
from persistence_site.settings.base import env

# --- Refuse unsafe values ---------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
INSECURE_KEY_PREFIX = "django-insecure"
MIN_SECRET_KEY_LENGTH = 50  # what Django's own deploy check (security.W009) asks for

if "SECRET_KEY" not in env.ENVIRON:
    raise ImproperlyConfigured("SECRET_KEY must be set in production (no default is used).")
SECRET_KEY = env.str("SECRET_KEY")
if (
    SECRET_KEY.startswith(INSECURE_KEY_PREFIX)
    or len(SECRET_KEY) < MIN_SECRET_KEY_LENGTH
    or len(set(SECRET_KEY)) < 5
):
    raise ImproperlyConfigured(
        f"SECRET_KEY is insecure: use at least {MIN_SECRET_KEY_LENGTH} random characters "
        f"that do not start with {INSECURE_KEY_PREFIX!r}."
    )
if env.bool("DEBUG", default=False):
    raise ImproperlyConfigured("DEBUG must be off in production.")
DEBUG = False
if "DATABASE_URL" not in env.ENVIRON:
    raise ImproperlyConfigured("DATABASE_URL must be set in production (mysql://user:pass@host/db).")
if "REDIS_URL" not in env.ENVIRON:
    raise ImproperlyConfigured("REDIS_URL must be set in production (redis://host:6379/0).")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the host names the service answers to.")
if not env.bool("API_AUTH_ENABLED", default=True):
    raise ImproperlyConfigured("API_AUTH_ENABLED cannot be turned off in production.")
API_AUTH_ENABLED = True

# --- HTTPS and cookies --------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#secure-proxy-ssl-header
# TLS ends at the load balancer, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Probes and scrapers inside the cluster speak plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^api/v1/system/metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Secure cookies are only sent back over HTTPS: the admin's login fails CSRF over plain HTTP.
# SECURE_COOKIES=false is for a deployment that has no TLS at all (docker-compose on one host,
# a private network); it is refused together with SECURE_SSL_REDIRECT=true, which implies TLS.
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=True)
if not SECURE_COOKIES and SECURE_SSL_REDIRECT:
    raise ImproperlyConfigured("SECURE_COOKIES=false needs SECURE_SSL_REDIRECT=false (no TLS at all).")
SESSION_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = SECURE_COOKIES
# The admin reads its CSRF token from the form, never from JavaScript.
CSRF_COOKIE_HTTPONLY = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if not SECURE_HSTS_PRELOAD:
    # Preloading is the domain owner's one-way decision, so it stays opt-in (SECURE_HSTS_PRELOAD).
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
