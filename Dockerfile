# Production image: gunicorn serving the API; the same image runs the Celery worker and beat.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
    && rm -rf /var/lib/apt/lists/*
COPY requirements/ /tmp/requirements/
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements/prod.txt

FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmariadb3 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=persistence_site.settings.production \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    BIND=0.0.0.0:8000 \
    WEB_CONCURRENCY=4
WORKDIR /app
COPY --chown=app:app . /app
RUN SECRET_KEY=build-only-$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n') \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 REDIS_URL=redis://localhost:6379/0 ALLOWED_HOSTS=build \
    python manage.py collectstatic --noinput -v0
USER app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/health || exit 1
CMD ["gunicorn", "persistence_site.wsgi:application", "-c", "persistence_site/gunicorn_conf.py"]
