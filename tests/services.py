"""Where the test suite finds real servers, and what it does when one is missing.

Without `REQUIRE_SERVICES=1` a missing server skips the tests that need it; with it (CI)
they fail, so a broken environment can never pass as green.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES", "") not in ("", "0", "false")

POSTGRES_ADMIN_URL = os.environ.get(
    "PORTICO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PORTICO_TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Tests take logical databases 10-15, leaving the low numbers to a developer's own data.
REDIS_TEST_DB = int(os.environ.get("PORTICO_TEST_REDIS_DB", "13"))
RABBITMQ_URL = os.environ.get("PORTICO_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def need(service: str, available: bool) -> None:
    """Skip (or fail under REQUIRE_SERVICES) when a service is not there."""
    if available:
        return
    message = f"{service} is not reachable"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and REQUIRE_SERVICES is set", pytrace=False)
    pytest.skip(message)


def drop_redis_keys(url: str, prefix: str) -> None:
    """Delete every key under `prefix` on the Redis at `url` (a test's own keys only)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
