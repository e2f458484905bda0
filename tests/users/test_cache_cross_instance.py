"""No stale reads across instances: two gunicorns sharing MariaDB and Redis, writes on one, reads
on the other at once, while other threads keep writing (docs/api.md §8: no stale cache)."""

from __future__ import annotations

import re
import threading
import uuid

import httpx
import pytest

from tests.processes import GunicornServer, service_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROUNDS = 100


def test_a_write_on_one_instance_is_read_on_the_other_at_once():
    env = service_env(THROTTLE_RATE_KEY="off", THROTTLE_RATE_IP="off")
    with GunicornServer(env=env, workers=2) as one, GunicornServer(env=env, workers=2) as two:
        # every instance exposes the cache's series from start-up, at zero (multiprocess mode)
        metrics = httpx.get(f"{two.url}/api/v1/system/metrics").text
        for level in ("l1", "l2"):
            assert (
                f'persistence_read_cache_requests_total{{cache="user",level="{level}",result="hit"}} 0.0'
                in metrics
            )
        uid = uuid.uuid4().hex[:10]
        ids = [f"x{uid}-{n}" for n in range(4)]
        with httpx.Client(base_url=one.url) as c:
            for user_id in ids:
                assert (
                    c.post("/api/v1/users", json={"user_id": user_id, "username": user_id}).status_code == 201
                )
        stop = threading.Event()
        errors: list[str] = []

        def churn(user_id: str) -> None:  # concurrent writers on both instances, other users
            with httpx.Client() as c:
                n = 0
                while not stop.is_set():
                    n += 1
                    url = (one.url if n % 2 else two.url) + f"/api/v1/users/{user_id}"
                    if c.patch(url, json={"display_name": f"churn {n}"}).status_code != 200:
                        errors.append("churn write failed")
                    c.get((two.url if n % 2 else one.url) + f"/api/v1/users/{user_id}")

        writers = [threading.Thread(target=churn, args=(user_id,)) for user_id in ids[1:]]
        for writer in writers:
            writer.start()
        stale = 0
        try:
            with httpx.Client() as c:
                for n in range(ROUNDS):
                    writer_url, reader_url = (one.url, two.url) if n % 2 else (two.url, one.url)
                    # warm the reader's caches with the current state, then write on the other instance
                    for _ in range(3):  # the later ones are mostly level-1 hits
                        c.get(f"{reader_url}/api/v1/users/{ids[0]}")
                    c.get(f"{reader_url}/api/v1/users", params={"q": f"x{uid}-0"})
                    assert (
                        c.patch(
                            f"{writer_url}/api/v1/users/{ids[0]}", json={"display_name": f"v{n}"}
                        ).status_code
                        == 200
                    )
                    got = c.get(f"{reader_url}/api/v1/users/{ids[0]}").json()["display_name"]
                    listed = c.get(f"{reader_url}/api/v1/users", params={"q": f"x{uid}-0"}).json()["items"][0]
                    stale += got != f"v{n}"
                    stale += listed["display_name"] != f"v{n}"
        finally:
            stop.set()
            for writer in writers:
                writer.join()
        assert not errors
        assert stale == 0
        # and the reads really went through the cache: level 1 answered some of them
        metrics = httpx.get(f"{one.url}/api/v1/system/metrics").text
        l1_hits = re.search(
            r'persistence_read_cache_requests_total\{cache="user",level="l1",result="hit"\} (\S+)', metrics
        )
        assert l1_hits and float(l1_hits.group(1)) > 0
