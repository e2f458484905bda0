"""A client nobody closed is flushed at interpreter exit (atexit), the sync and the async one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from persistence_client import PersistenceClient
from tests.processes import ROOT

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

SYNC = """
from persistence_client import PersistenceClient
client = PersistenceClient(URL, api_key=KEY, flush_interval=60)
client.persist_sessions([SESSION])
"""
ASYNC = """
import asyncio
from persistence_client import AsyncPersistenceClient

async def main():
    client = AsyncPersistenceClient(URL, api_key=KEY, flush_interval=60)
    await client.persist_sessions([SESSION])

asyncio.run(main())
"""


def run_and_exit(script: str, live, session_id: str) -> None:
    record = {"session_id": session_id, "filename": "a.xlsx", "file_path": "/a", "status": "processing",
              "llm_provider": "openai"}  # fmt: skip
    prelude = f"URL, KEY, SESSION = {live.url!r}, {live.key!r}, {record!r}\n"
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", [SYNC, ASYNC], ids=["sync", "async"])
def test_records_buffered_by_an_unclosed_client_are_sent_at_exit(live, uid, script):
    run_and_exit(script, live, f"{uid}-s")

    with PersistenceClient(live.url, api_key=live.key) as client:
        assert client.get_session(f"{uid}-s")["status"] == "processing"
