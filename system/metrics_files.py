"""Names of this process's metric files when several containers share one multiprocess directory.

prometheus_client names each process's file after its pid (``counter_42.db``). Containers have
their own pid namespaces, so a web container and a worker container sharing the directory (one
volume, as in docker-compose.yml) would have processes with equal pids writing the same file.
With ``PROMETHEUS_MULTIPROC_SHARED=true`` the identifier is ``<host name>-<pid>`` instead: the
host name of a container is its own. Must run before any metric is created (it does:
``persistence_site/__init__.py`` calls it first).
"""

from __future__ import annotations

import os
import re
import socket

SHARED_ENV = "PROMETHEUS_MULTIPROC_SHARED"
_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"


def shared() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")) and os.environ.get(SHARED_ENV, "").lower() in {
        "1",
        "true",
        "yes",
    }


def host() -> str:
    return _HOST


def process_identifier(pid: int | None = None) -> str:
    """This process's (or ``pid``'s, on this host) part of a metric file name."""
    pid = os.getpid() if pid is None else pid
    return f"{_HOST}-{pid}" if shared() else str(pid)


def configure() -> None:
    """Switch prometheus_client to host-qualified file names when the directory is shared."""
    if not shared():
        return
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)
