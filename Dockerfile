# Production image: gunicorn serving the API; the same image runs the Celery worker and beat.
# Base images are arguments so that a registry mirror or local stand-ins can be used
# (scripts/containers.sh builds stand-ins from Debian packages); the defaults are the public ones.
ARG PYTHON_IMAGE=python:3.11-slim
ARG PYTHON_BUILD_IMAGE=python:3.11-slim

FROM ${PYTHON_BUILD_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
    && rm -rf /var/lib/apt/lists/*
COPY requirements/ /tmp/requirements/
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements/prod.txt

FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmariadb3 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 app \
    && mkdir -p /var/lib/persistence/metrics \
    && chown -R app:app /var/lib/persistence
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=persistence_site.settings.production \
    BIND=0.0.0.0:8000 \
    WEB_CONCURRENCY=4
WORKDIR /app
COPY --chown=app:app . /app
# collectstatic runs as root at build time, before PROMETHEUS_MULTIPROC_DIR is set: metric files
# written here would belong to root and every process of the user app would fail to open them.
RUN SECRET_KEY=build-only-$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n') \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 REDIS_URL=redis://localhost:6379/0 ALLOWED_HOSTS=build \
    python manage.py collectstatic --noinput -v0 \
    && rm -f /tmp/build.sqlite3
USER app
# Every process (gunicorn workers, the Celery worker, manage.py) keeps its metric values here;
# mount one volume here in web and worker so that the scrape shows the worker's flushes.
ENV PROMETHEUS_MULTIPROC_DIR=/var/lib/persistence/metrics
EXPOSE 8000
# /health with a Host header that ALLOWED_HOSTS accepts (a real ALLOWED_HOSTS refuses 127.0.0.1).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/app/scripts/healthcheck-web.sh"]
CMD ["gunicorn", "persistence_site.wsgi:application", "-c", "persistence_site/gunicorn_conf.py"]
