"""The `JobDispatcher` contract, on the in-process dispatcher and on the Celery dispatcher
publishing to the machine's Redis and RabbitMQ.

What every dispatcher promises (the port's docstring):
- `dispatch` hands the job to the runner whole (every field of `Job`) and returns without
  waiting for it to run; every dispatched job is delivered, a job dispatched twice twice;
- a runner that cannot take a job makes `dispatch` raise `UnavailableError`, within a
  bound (the in-process runner when full; a broker that is down or silent within
  `publish_timeout_seconds`), and the job is not delivered;
- `capacity()` is how many more jobs the runner takes right now, None when any number.

No Celery worker runs here: the runner's side is read back from the broker by a kombu
consumer of the test's own, as a worker would decode it (`job_from_message`). Each test
has a broker namespace of its own (a Redis key prefix, a RabbitMQ queue), deleted after.
The refusals use a closed port and a silent server of the test's own, never the shared
brokers. The Celery dispatcher's `aclose` (the port has none; the in-process runner holds
nothing to close) is tested at the end.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from kombu import Connection, Queue

from adapters.celery.config import RUN_JOB_TASK, CeleryOptions, broker_scheme
from adapters.celery.dispatcher import CeleryJobDispatcher
from adapters.memory.jobs import InProcessJobDispatcher
from core.platform.jobs import Job, JobDispatcher, job_from_message
from core.shared.errors import UnavailableError
from tests.brokers import Broker, SilentServer, rabbitmq_broker, redis_broker
from tests.private_servers import free_port

SLOTS = 8  # the in-process runner's
PUBLISH_TIMEOUT = 1.0  # the Celery dispatchers'
# A refusal takes at most its bound plus this: scheduling on a loaded 2-core machine.
SLACK = 2.0
READ_TIMEOUT = 10.0  # reading back what a broker holds


@dataclass
class Refusal:
    """A dispatcher of the same kind whose runner cannot take a job."""

    what: str
    dispatcher: JobDispatcher
    within: float  # seconds the refusal may take (its own bound, before SLACK)
    dependency: str  # `UnavailableError.dependency`


@dataclass
class Harness:
    name: str
    dispatcher: JobDispatcher
    # The next `n` jobs the runner received, as it sees them; fails when another one
    # was delivered beyond those.
    received: Callable[[int], Awaitable[list[Job]]]
    refusals: Callable[[], AbstractAsyncContextManager[list[Refusal]]]


def job(job_id: int = 1, **changes: object) -> Job:
    values: dict[str, object] = {
        "id": job_id,
        "name": "notifications.send_email",
        "payload": {
            "to": "zoë@example.com",
            "lines": ["Grüße", "你好 👋", 'quote " and \\ backslash'],
            "nested": {"n": 2**53, "ratio": 0.25, "flag": True, "none": None, "empty": []},
        },
        "idempotency_key": f"key:{job_id}:ü",
        "attempts": 2,
        "created_at": datetime(2026, 11, 3, 12, 30, 15, 123456, tzinfo=UTC),
        "lease": 7,
    }
    values.update(changes)
    return Job(**values)  # type: ignore[arg-type]


# --- in process ---------------------------------------------------------------------------


@asynccontextmanager
async def _in_process() -> AsyncIterator[Harness]:
    dispatcher = InProcessJobDispatcher(SLOTS)

    async def received(n: int) -> list[Job]:
        jobs = []
        for _ in range(n):
            jobs.append(await asyncio.wait_for(dispatcher.next_job(), READ_TIMEOUT))
            dispatcher.job_finished()
        assert dispatcher.idle, "more jobs were delivered than dispatched"
        return jobs

    @asynccontextmanager
    async def refusals() -> AsyncIterator[list[Refusal]]:
        full = InProcessJobDispatcher(1)
        await full.dispatch(job(99))
        # Queued locally: refused at once, no waiting.
        yield [Refusal("full", full, within=0.0, dependency="jobs")]

    yield Harness("in-process", dispatcher, received, refusals)


# --- Celery -------------------------------------------------------------------------------


def celery_dispatcher(url: str, broker: Broker) -> CeleryJobDispatcher:
    """The same dispatcher for the real broker and for the refusals: only the URL differs,
    so the tests that deliver are the positive control of those that refuse."""
    return CeleryJobDispatcher(
        CeleryOptions(
            url,
            queue=broker.queue,
            redis_key_prefix=broker.redis_prefix,
            connect_timeout_seconds=PUBLISH_TIMEOUT,
            publish_timeout_seconds=PUBLISH_TIMEOUT,
            remote_control=False,
        )
    )


def same_broker_on(url: str, port: int) -> str:
    """`url`'s scheme and credentials, on 127.0.0.1:`port`."""
    if broker_scheme(url) == "redis":
        return f"redis://127.0.0.1:{port}/0"
    parts = urlsplit(url)
    return f"amqp://{parts.username}:{parts.password}@127.0.0.1:{port}//"


def consumer(broker: Broker) -> Connection:
    options = {"global_keyprefix": broker.redis_prefix} if broker.redis_prefix else {}
    return Connection(broker.url, connect_timeout=5, transport_options=options)


def read_back(broker: Broker, n: int) -> list[Job]:
    """The next `n` messages of the broker's queue, decoded as a worker decodes them."""
    jobs: list[Job] = []
    with consumer(broker) as connection:
        queue = Queue(broker.queue)(connection.default_channel)
        deadline = time.monotonic() + READ_TIMEOUT
        while len(jobs) < n:
            message = queue.get(no_ack=True)
            if message is None:
                assert time.monotonic() < deadline, f"{len(jobs)} of {n} jobs arrived"
                time.sleep(0.05)
                continue
            assert message.headers["task"] == RUN_JOB_TASK
            assert message.content_type == "application/json"  # data, never pickle
            args, kwargs, _ = message.decode()
            assert args == [] and set(kwargs) == {"job"}
            jobs.append(job_from_message(kwargs["job"]))
        assert queue.get(no_ack=True) is None, "more jobs were delivered than dispatched"
    return jobs


@asynccontextmanager
async def _celery(broker: Broker) -> AsyncIterator[Harness]:
    dispatcher = celery_dispatcher(broker.url, broker)

    async def received(n: int) -> list[Job]:
        return await asyncio.to_thread(read_back, broker, n)

    @asynccontextmanager
    async def refusals() -> AsyncIterator[list[Refusal]]:
        silent = SilentServer()  # accepts connections, never answers
        down = celery_dispatcher(same_broker_on(broker.url, free_port()), broker)
        stuck = celery_dispatcher(same_broker_on(broker.url, silent.port), broker)
        try:
            yield [
                Refusal("closed port", down, within=PUBLISH_TIMEOUT, dependency="broker"),
                Refusal("silent server", stuck, within=PUBLISH_TIMEOUT, dependency="broker"),
            ]
        finally:
            await down.aclose()
            await stuck.aclose()
            silent.close()

    try:
        yield Harness(f"celery on {broker_scheme(broker.url)}", dispatcher, received, refusals)
    finally:
        await dispatcher.aclose()


@pytest.fixture(
    params=[
        "in-process",
        pytest.param("celery-redis", marks=pytest.mark.integration),
        pytest.param("celery-rabbitmq", marks=pytest.mark.integration),
    ]
)
async def h(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "in-process":
        async with _in_process() as harness:
            yield harness
        return
    if request.param == "celery-redis":
        namespace = redis_broker(request.getfixturevalue("redis_url"), "dispatch")
    else:
        namespace = rabbitmq_broker(request.getfixturevalue("rabbitmq_url"), "dispatch")
    with namespace as broker:
        async with _celery(broker) as harness:
            yield harness


# --- the contract -------------------------------------------------------------------------


async def test_a_dispatched_job_reaches_the_runner_with_every_field(h: Harness) -> None:
    sent = job(41)
    # Nothing runs jobs here: a dispatch that waited for the run would never return.
    async with asyncio.timeout(PUBLISH_TIMEOUT + SLACK):
        await h.dispatcher.dispatch(sent)
    assert await h.received(1) == [sent]


async def test_a_job_without_a_creation_time_or_payload_arrives_as_it_was(h: Harness) -> None:
    sent = job(42, payload={}, created_at=None, attempts=0, lease=1)
    await h.dispatcher.dispatch(sent)
    assert await h.received(1) == [sent]


async def test_every_dispatched_job_is_delivered_and_a_repeat_twice(h: Harness) -> None:
    first, second, third = job(1), job(2, name="billing.sweep"), job(3, lease=8)
    redelivered = replace(first)  # the same job handed out again (at least once)
    for sent in (first, second, third, redelivered):
        await h.dispatcher.dispatch(sent)

    def order(j: Job) -> tuple[int, int]:
        return j.id, j.lease

    got = await h.received(4)
    assert sorted(got, key=order) == sorted([first, redelivered, second, third], key=order)


async def test_a_runner_that_cannot_take_the_job_raises_unavailable_in_time(
    h: Harness,
) -> None:
    async with h.refusals() as refusals:
        for refusal in refusals:
            started = time.monotonic()
            with pytest.raises(UnavailableError) as caught:
                await refusal.dispatcher.dispatch(job(43))
            elapsed = time.monotonic() - started
            assert caught.value.dependency == refusal.dependency, refusal.what
            assert elapsed < refusal.within + SLACK, f"{refusal.what}: {elapsed:.2f}s"
    # The refused job went nowhere: the runner under test saw nothing.
    await h.dispatcher.dispatch(job(44))
    assert [j.id for j in await h.received(1)] == [44]


async def test_capacity_is_how_many_more_jobs_dispatch_accepts(h: Harness) -> None:
    capacity = h.dispatcher.capacity()
    if capacity is None:  # a broker: takes any number, and still says None
        jobs = [job(n) for n in range(1, 3 * SLOTS + 1)]
        for sent in jobs:
            await h.dispatcher.dispatch(sent)
            assert h.dispatcher.capacity() is None
        assert len(await h.received(len(jobs))) == len(jobs)
        return
    assert capacity == SLOTS
    for n in range(1, capacity + 1):
        await h.dispatcher.dispatch(job(n))
        assert h.dispatcher.capacity() == capacity - n
    with pytest.raises(UnavailableError):
        await h.dispatcher.dispatch(job(capacity + 1))
    assert len(await h.received(capacity)) == capacity
    assert h.dispatcher.capacity() == capacity  # taken and finished: room again


# --- in process: running jobs count against the slots ------------------------------------


async def test_in_process_jobs_count_until_finished_not_until_taken() -> None:
    dispatcher = InProcessJobDispatcher(2)
    await dispatcher.dispatch(job(1))
    await dispatcher.dispatch(job(2))
    taken = await dispatcher.next_job()
    assert taken == job(1)
    assert dispatcher.capacity() == 0 and not dispatcher.idle  # one queued, one running
    with pytest.raises(UnavailableError):
        await dispatcher.dispatch(job(3))
    dispatcher.job_finished()
    assert dispatcher.capacity() == 1
    await dispatcher.dispatch(job(3))  # the positive control: accepted once there is room
    assert [await dispatcher.next_job(), await dispatcher.next_job()] == [job(2), job(3)]
    dispatcher.job_finished()
    dispatcher.job_finished()
    await asyncio.wait_for(dispatcher.wait_idle(), READ_TIMEOUT)
    assert dispatcher.idle and dispatcher.capacity() == 2


# --- Celery specifics ---------------------------------------------------------------------


def _sockets_to(port: int) -> set[str]:
    """Inodes of this process's established TCP connections to 127.0.0.1:`port`."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed while listing
        if target.startswith("socket:["):
            mine.add(target[len("socket:[") : -1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)  # header
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == "01" and fields[9] in mine:
                    found.add(fields[9])
    return found


def _publish_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("celery-publish")}


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    if request.param == "redis":
        namespace = redis_broker(request.getfixturevalue("redis_url"), "aclose")
    else:
        namespace = rabbitmq_broker(request.getfixturevalue("rabbitmq_url"), "aclose")
    with namespace as made:
        yield made


@pytest.mark.integration
async def test_celery_aclose_ends_the_thread_and_closes_the_broker_connection(
    broker: Broker,
) -> None:
    port = urlsplit(broker.url).port or (6379 if broker_scheme(broker.url) == "redis" else 5672)
    before_sockets, before_threads = _sockets_to(port), _publish_threads()
    dispatcher = celery_dispatcher(broker.url, broker)
    try:
        for n in (1, 2, 3):
            await dispatcher.dispatch(job(n))
        ours = _sockets_to(port) - before_sockets
        threads = _publish_threads() - before_threads
        # The control: while open, the dispatcher holds a connection and a thread.
        assert ours and threads
    finally:
        await dispatcher.aclose()
    assert not ours & _sockets_to(port), "aclose left a broker connection open"
    assert not any(thread.is_alive() for thread in threads)
    assert [j.id for j in await asyncio.to_thread(read_back, broker, 3)] == [1, 2, 3]


@pytest.mark.integration
async def test_celery_messages_keep_the_payload_out_of_what_celery_logs(broker: Broker) -> None:
    dispatcher = celery_dispatcher(broker.url, broker)
    try:
        await dispatcher.dispatch(job(5, payload={"reset_link": "https://x.example/?t=s3cr3t"}))
    finally:
        await dispatcher.aclose()
    with consumer(broker) as connection:
        message = Queue(broker.queue)(connection.default_channel).get(no_ack=True)
    assert message is not None
    shown = f"{message.headers['argsrepr']} {message.headers['kwargsrepr']}"
    assert "s3cr3t" not in shown and "reset_link" not in shown
    assert "5" in shown and "notifications.send_email" in shown  # the ids are there
    assert "s3cr3t" in str(message.decode())  # the control: the payload is in the body
