"""Broker namespaces of the test's own on the machine's shared Redis and RabbitMQ.

A Redis broker gets a key prefix unique to the run (on the tests' logical database) and
a RabbitMQ broker a queue (and exchange) of the same unique name; both are deleted when
the block ends, so tests never see each other's messages and leave nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from tests.services import drop_redis_keys


@dataclass(frozen=True)
class Broker:
    url: str
    queue: str
    redis_prefix: str = ""


def unique(label: str) -> str:
    return f"portico-test-{label}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def redis_broker(redis_url: str, label: str) -> Iterator[Broker]:
    name = unique(label)
    broker = Broker(redis_url, queue=name, redis_prefix=f"{name}:")
    try:
        yield broker
    finally:
        drop_redis_keys(redis_url, broker.redis_prefix)


@contextlib.contextmanager
def rabbitmq_broker(rabbitmq_url: str, label: str) -> Iterator[Broker]:
    from kombu import Connection

    broker = Broker(rabbitmq_url, queue=unique(label))
    try:
        yield broker
    finally:
        with Connection(rabbitmq_url, connect_timeout=5) as connection:
            channel = connection.default_channel
            channel.queue_delete(broker.queue)
            channel.exchange_delete(broker.queue)


class SilentServer:
    """Accepts TCP connections and never answers: a broker that is up but stuck.

    Bound to a free port of 127.0.0.1 by this test alone; `close()` it afterwards."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._clients: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._socket.accept()
                self._clients.append(client)

    def close(self) -> None:
        self._socket.close()
        for client in self._clients:
            client.close()
