"""Publishing claimed jobs to Celery."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from celery import Celery
from kombu import Connection, Producer
from kombu.exceptions import OperationalError

from adapters.celery.config import RUN_JOB_TASK, CeleryOptions, create_celery_app
from core.platform.jobs import Job, JobDispatcher, job_to_message
from core.shared.errors import UnavailableError


class CeleryJobDispatcher(JobDispatcher):
    """`JobDispatcher` that publishes `portico.run_job` to a Celery broker (see the port).

    kombu publishes synchronously, so publishing runs in one dedicated thread (in order,
    and never on the event loop). Each publish is bounded: socket timeouts and a short
    retry policy inside kombu, and `publish_timeout_seconds` around the whole call. A
    broker that is down or slow raises `UnavailableError(dependency="broker")`; the relay
    then leaves the job claimed until its lease expires. The message carries the job as
    JSON (`job_to_message`); its payload is kept out of Celery's logs.

    That thread owns the dispatcher's one broker connection (opened at the first
    publish, reconnected by kombu after a failure); `aclose` closes it. Not Celery's
    producer pool: kombu keeps that pool per process, shared by every app with the same
    broker settings, and `Celery.close()` forgets it without closing its connections.
    """

    def __init__(self, options: CeleryOptions, app: Celery | None = None) -> None:
        self._options = options
        self._app = app or create_celery_app(options, publisher=True)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="celery-publish")
        # Touched only by the publishing thread (and by `aclose` once that has ended).
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        connection = self._app.connection_for_write()
        # The transport's own error types (redis-py's, py-amqp's): an outage, not a bug.
        self._broker_errors: tuple[type[BaseException], ...] = (
            OperationalError,
            OSError,
            TimeoutError,
            *connection.connection_errors,
            *connection.channel_errors,
        )
        connection.release()

    async def dispatch(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        try:
            # `asyncio.timeout` rather than `wait_for`, which on 3.11 can swallow the
            # relay's cancellation when the publish finishes at the same moment.
            async with asyncio.timeout(self._options.publish_timeout_seconds):
                await loop.run_in_executor(self._thread, self._publish, job)
        except self._broker_errors as exc:
            raise UnavailableError("The job broker is unavailable.", dependency="broker") from exc

    def capacity(self) -> None:
        return None

    def _publish(self, job: Job) -> None:
        if self._producer is None:
            # Lazy: neither line connects; the first publish does.
            self._connection = self._app.connection_for_write()
            self._producer = self._app.amqp.Producer(self._connection, auto_declare=False)
        self._app.send_task(
            RUN_JOB_TASK,
            kwargs={"job": job_to_message(job)},
            queue=self._options.queue,
            producer=self._producer,
            # Celery logs these instead of the arguments: ids, never the payload.
            argsrepr="()",
            kwargsrepr=f"{{job: {job.id} {job.name} lease {job.lease}}}",
        )

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = self._producer = None
        self._app.close()

    async def aclose(self) -> None:
        """Stop the publishing thread (after the publish in progress, if any) and close
        the broker connection."""
        await asyncio.to_thread(self._thread.shutdown, wait=True, cancel_futures=True)
        await asyncio.to_thread(self._close_connection)
