"""gunicorn settings shared by the quick start, the Dockerfile and the tests.

gunicorn persistence_site.wsgi:application -c persistence_site/gunicorn_conf.py --workers 4
"""

import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Our middleware writes the access log as structured lines; gunicorn's own would duplicate it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
graceful_timeout = 30
timeout = 60
