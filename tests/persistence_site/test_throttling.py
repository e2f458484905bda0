"""Rate limits per API key and per client IP, counted in Redis: 429 THROTTLED with Retry-After."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api_keys.services import api_key_create
from tests.processes import GunicornServer, service_env

URL = "/api/v1/system/config"
_addresses = (f"10.{a}.{b}.7" for a, b in itertools.product(range(1, 250), range(1, 250)))


@pytest.fixture
def rates(settings):
    """``rates(api_key="3/min", client_ip="off", auth_failure="off", proxies=0)`` sets the limits."""

    def set_rates(
        api_key: str = "off", client_ip: str = "off", auth_failure: str = "off", proxies: int = 0
    ) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                "api_key": api_key,
                "client_ip": client_ip,
                "auth_failure": auth_failure,
            },
            "NUM_PROXIES": proxies,
        }

    return set_rates


def _admin_key() -> str:
    return api_key_create(name="throttled", scopes="admin")[1]


@pytest.mark.django_db
def test_key_over_its_rate_gets_429_throttled_with_retry_after(client, settings, rates):
    settings.API_AUTH_ENABLED = True
    rates(api_key="3/min")
    headers = {"X-API-Key": _admin_key()}

    statuses = [client.get(URL, headers=headers).status_code for _ in range(3)]
    response = client.get(URL, headers=headers)

    assert statuses == [200, 200, 200]
    assert response.status_code == 429
    assert response.json()["error_code"] == "THROTTLED"
    assert 1 <= int(response["Retry-After"]) <= 61


@pytest.mark.django_db
def test_each_key_has_its_own_budget(client, settings, rates):
    settings.API_AUTH_ENABLED = True
    rates(api_key="1/min")
    first, second = {"X-API-Key": _admin_key()}, {"X-API-Key": _admin_key()}
    client.get(URL, headers=first)

    assert client.get(URL, headers=first).status_code == 429
    assert client.get(URL, headers=second).status_code == 200


@pytest.mark.django_db
def test_requests_without_a_key_are_rate_limited_per_address_too(client, settings, rates):
    settings.API_AUTH_ENABLED = True
    rates(client_ip="3/min")
    address = next(_addresses)

    statuses = [client.get(URL, REMOTE_ADDR=address).status_code for _ in range(4)]

    assert statuses == [401, 401, 401, 429]


@pytest.mark.django_db
def test_a_flood_of_wrong_keys_is_stopped_without_a_database_lookup_each(client, settings, rates):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.API_AUTH_ENABLED = True
    rates(auth_failure="5/min")
    address = next(_addresses)
    wrong = {"X-API-Key": "abcdefgh.not-a-real-secret"}
    statuses = [client.get(URL, headers=wrong, REMOTE_ADDR=address).status_code for _ in range(5)]

    with CaptureQueriesContext(connection) as queries:
        blocked = client.get(URL, headers=wrong, REMOTE_ADDR=address)
        also_blocked = client.get(URL, headers={"X-API-Key": _admin_key()}, REMOTE_ADDR=address)

    assert statuses == [401] * 5
    assert (blocked.status_code, also_blocked.status_code) == (429, 429)
    assert blocked.json()["error_code"] == "THROTTLED" and int(blocked["Retry-After"]) >= 1
    assert not [
        q for q in queries.captured_queries if "api_key" in q["sql"].lower() and "select" in q["sql"].lower()
    ]
    # another address is not affected
    assert (
        client.get(URL, headers={"X-API-Key": _admin_key()}, REMOTE_ADDR=next(_addresses)).status_code == 200
    )


@pytest.mark.django_db
def test_client_ip_limit_counts_requests_from_one_address(client, rates):
    rates(client_ip="2/min")  # the test settings have API keys off: every request is key-less
    address, other = next(_addresses), next(_addresses)

    statuses = [client.get(URL, REMOTE_ADDR=address).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert client.get(URL, REMOTE_ADDR=other).status_code == 200


@pytest.mark.django_db
def test_forwarded_for_cannot_pick_a_new_address_without_trusted_proxies(client, rates):
    rates(client_ip="1/min")
    address = next(_addresses)
    client.get(URL, REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=next(_addresses))

    response = client.get(URL, REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=next(_addresses))

    assert response.status_code == 429


@pytest.mark.django_db
def test_forwarded_for_names_the_client_behind_a_trusted_proxy(client, rates):
    rates(client_ip="1/min", proxies=1)
    proxy = next(_addresses)
    client.get(URL, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=next(_addresses))

    response = client.get(URL, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=next(_addresses))

    assert response.status_code == 200


@pytest.mark.django_db
def test_limits_hold_with_the_local_memory_cache_of_the_embedded_mode(client, settings, rates):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    rates(client_ip="2/min")
    address = next(_addresses)

    statuses = [client.get(URL, REMOTE_ADDR=address).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


@pytest.mark.django_db
def test_requests_go_through_when_the_cache_is_down(client, settings, rates):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    rates(client_ip="1/min")
    address = next(_addresses)

    statuses = [client.get(URL, REMOTE_ADDR=address).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_limit_holds_across_gunicorn_workers():
    # given a per-key limit of 20 a day and three workers sharing the Redis counters
    secret = _admin_key()
    env = service_env(API_AUTH_ENABLED="true", THROTTLE_RATE_KEY="20/day", THROTTLE_RATE_IP="off")

    with GunicornServer(env=env, workers=3) as server:
        # when 30 requests arrive at once, on separate connections
        def call(_: int) -> int:
            return httpx.get(server.url + URL, headers={"X-API-Key": secret}, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(pool.map(call, range(30)))

    # then exactly 20 pass, whichever worker served them
    assert statuses.count(200) == 20
    assert statuses.count(429) == 10


@pytest.mark.django_db
def test_a_wrong_secret_does_not_spend_the_budget_of_the_key_it_names(client, settings, rates):
    settings.API_AUTH_ENABLED = True
    rates(api_key="3/min")
    key = _admin_key()
    prefix = key.split(".")[0]
    guesses = [client.get(URL, headers={"X-API-Key": f"{prefix}.wrong-secret"}).status_code for _ in range(5)]

    statuses = [client.get(URL, headers={"X-API-Key": key}).status_code for _ in range(4)]

    assert guesses == [401] * 5
    assert statuses == [200, 200, 200, 429]


@pytest.mark.django_db
def test_every_limit_of_a_request_costs_one_redis_round_trip(client, settings, rates, monkeypatch):
    import redis

    settings.API_AUTH_ENABLED = True
    rates(api_key="100/min", client_ip="100/min", auth_failure="100/min")
    key = _admin_key()
    address = next(_addresses)
    # the first request may load the counting script into Redis
    # An endpoint that itself talks to Redis for nothing (system/config writes an audit event).
    url = "/api/v1/audit/logs"
    assert client.get(url, headers={"X-API-Key": key}, REMOTE_ADDR=address).status_code == 200
    sent = []
    original = redis.connection.AbstractConnection.send_packed_command
    monkeypatch.setattr(
        redis.connection.AbstractConnection,
        "send_packed_command",
        lambda self, *a, **k: sent.append(1) or original(self, *a, **k),
    )

    assert client.get(url, headers={"X-API-Key": key}, REMOTE_ADDR=address).status_code == 200

    assert len(sent) == 1


@pytest.mark.django_db
def test_a_give_back_does_not_recreate_an_expired_window(settings, rates):
    from django.core.cache import cache

    from core.throttling import Limit, _count

    rates(api_key="5/min")
    limit = Limit.of("api_key")
    key = f"throttle:api_key:gone-{next(_addresses)}:1"

    _count({}, {}, give_back=(limit, key))

    assert cache.get(key) is None


@pytest.mark.django_db
def test_a_revoked_key_is_refused_once_its_cached_verification_expires(client, settings):
    import time

    from api_keys.models import APIKey

    settings.API_AUTH_ENABLED = True
    settings.API_KEY_CACHE_SECONDS = 1
    key = _admin_key()
    assert client.get(URL, headers={"X-API-Key": key}).status_code == 200
    APIKey.objects.filter(prefix=key.split(".")[0]).update(revoked=True)

    within = client.get(URL, headers={"X-API-Key": key}).status_code
    time.sleep(1.1)
    after = client.get(URL, headers={"X-API-Key": key}).status_code

    assert (within, after) == (200, 401)
