"""Is the Celery broker there? A readiness probe with its own connection."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

from kombu import Connection
from kombu.exceptions import OperationalError

from adapters.celery.config import CeleryOptions, broker_scheme, create_celery_app
from core.shared.errors import UnavailableError


class CeleryBrokerProbe:
    """One round trip to the broker the jobs are published to: a channel opened and
    closed (RabbitMQ), or a PING (Redis), over a connection kept between probes (so a
    broker does not log a connection per probe) and opened again after a failure.

    kombu is synchronous: the round trip runs in one thread of its own, never on the
    event loop and never in the publisher's thread (a probe must not wait behind a
    publish). Connect, read and write timeouts come from the Celery options; the caller
    bounds the whole call too. A broker that is down, refuses the credentials or does
    not answer raises `UnavailableError(dependency="broker")`.
    """

    def __init__(self, options: CeleryOptions) -> None:
        self._app = create_celery_app(options, publisher=True)
        self._redis = broker_scheme(options.broker_url) == "redis"
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broker-probe")
        # Touched only by the probe's thread (and by `aclose` once that has ended).
        self._connection: Connection | None = None
        connection = self._app.connection_for_write()
        self._errors: tuple[type[BaseException], ...] = (
            OperationalError,
            OSError,
            TimeoutError,
            *connection.connection_errors,
            *connection.channel_errors,
        )
        connection.release()

    async def ping(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._round_trip)
        except self._errors as exc:
            raise UnavailableError("The job broker is unavailable.", dependency="broker") from exc

    def _round_trip(self) -> None:
        reused = self._connection is not None
        try:
            self._try_once()
        except self._errors:
            if not reused:
                raise
            # The kept connection may have died with a broker restart since the last
            # probe: one fresh attempt tells that apart from a broker still down.
            self._try_once()

    def _try_once(self) -> None:
        if self._connection is None:
            self._connection = self._app.connection_for_write()
        try:
            # No retries inside kombu: the caller's next probe is the retry.
            self._connection.ensure_connection(max_retries=0)
            channel = self._connection.channel()
            try:
                if self._redis:
                    channel.client.ping()
            finally:
                channel.close()
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        if self._connection is not None:
            # Already broken: forgetting it is all that is left to do.
            with contextlib.suppress(*self._errors):
                self._connection.close()
            self._connection = None

    async def aclose(self) -> None:
        """Stop the probe's thread (after a probe in progress) and close its connection."""
        await asyncio.to_thread(self._thread.shutdown, wait=True, cancel_futures=True)
        await asyncio.to_thread(self._drop)
        self._app.close()
