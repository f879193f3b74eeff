"""The SQL outbox: the unit of work's job queue and the relay's side of the jobs table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Insert,
    Row,
    Table,
    and_,
    case,
    delete,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from adapters.sqlalchemy.engine import READ_ONLY
from adapters.sqlalchemy.errors import database_errors
from adapters.sqlalchemy.records_jobs import JOBS_NAME_KEY_UNIQUE, JobRecord
from core.platform.jobs import (
    DeadJob,
    Job,
    JobPayload,
    JobQueue,
    JobState,
    JobStatus,
    Outbox,
    check_job,
)
from core.shared.clock import Clock

# Core statements on the table: claims and state changes are set-based, not ORM objects.
_jobs = cast(Table, JobRecord.__table__)
_c = _jobs.c
_LEASED = (JobStatus.CLAIMED.value, JobStatus.RUNNING.value)
_FINAL = (JobStatus.DONE.value, JobStatus.DEAD.value)
_LEASE_EXPIRED = "lease expired: the runner was lost"
_JOB_COLUMNS = (
    _c.id,
    _c.name,
    _c.payload,
    _c.idempotency_key,
    _c.attempts,
    _c.lease,
    _c.created_at,
    _c.available_at,
)
# Each purge transaction deletes at most this many rows, so it never holds SQLite's
# write lock (or a long Postgres transaction) for long.
_PURGE_CHUNK = 1000


class _UtcClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


def _insert_new(dialect: str, values: Mapping[str, Any]) -> Insert:
    """INSERT that skips a row whose (name, idempotency_key) exists, returning its id."""
    if dialect == "postgresql":
        pg = postgresql.insert(_jobs).values(**values)
        return pg.on_conflict_do_nothing(constraint=JOBS_NAME_KEY_UNIQUE).returning(_c.id)
    if dialect == "sqlite":
        lite = sqlite.insert(_jobs).values(**values)
        return lite.on_conflict_do_nothing(index_elements=["name", "idempotency_key"]).returning(
            _c.id
        )
    raise ValueError(f"unsupported database dialect: {dialect!r}")


def _new_job(
    name: str, payload: dict[str, Any], key: str, available_at: datetime, now: datetime
) -> dict[str, Any]:
    return {
        "name": name,
        "idempotency_key": key,
        "payload": payload,
        "status": JobStatus.PENDING.value,
        "attempts": 0,
        "lease": 0,
        "available_at": available_at,
        "created_at": now,
        "updated_at": now,
    }


def _job(row: Row[Any]) -> Job:
    return Job(
        id=row.id,
        name=row.name,
        payload=dict(row.payload),
        idempotency_key=row.idempotency_key,
        attempts=row.attempts,
        created_at=row.created_at,
        lease=row.lease,
    )


class SqlAlchemyJobQueue(JobQueue):
    """`JobQueue` on the unit of work's session (see the port for the contract).

    `enqueue` INSERTs into `jobs` in the caller's transaction, skipping a duplicate
    (name, key) with ON CONFLICT DO NOTHING, so a concurrent duplicate waits for the
    first transaction and then does nothing (or inserts, if the first rolled back).
    `after_commit` is for the unit of work: it calls `on_commit` when jobs were enqueued,
    so an in-process relay can publish them at once instead of at its next poll.
    """

    def __init__(
        self,
        session: AsyncSession,
        clock: Clock | None = None,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._session = session
        self._clock = clock or _UtcClock()
        self._on_commit = on_commit
        self._enqueued = False

    async def enqueue(
        self,
        name: str,
        payload: JobPayload,
        *,
        idempotency_key: str,
        delay_seconds: float = 0,
    ) -> None:
        data = check_job(name, payload, idempotency_key)
        now = self._clock.now()
        available_at = now + timedelta(seconds=max(delay_seconds, 0))
        dialect = self._session.get_bind().dialect.name
        with database_errors():
            await self._session.execute(
                _insert_new(dialect, _new_job(name, data, idempotency_key, available_at, now))
            )
        self._enqueued = True

    def after_commit(self) -> None:
        if self._enqueued and self._on_commit is not None:
            self._on_commit()
        self._enqueued = False


class SqlAlchemyOutbox(Outbox):
    """`Outbox` on the jobs table (see the port for the contract).

    Every method is one short transaction of its own. Claims are one UPDATE over a
    sub-select of due ids: on Postgres the sub-select locks with `FOR UPDATE SKIP
    LOCKED`, so concurrent relays split the work instead of queueing; on SQLite every
    write transaction is `BEGIN IMMEDIATE` (one writer at a time), so the UPDATE sees
    and takes rows atomically, and an idle relay first checks in a read-only transaction
    so polling never takes the write lock for nothing. Every state change is a
    conditional UPDATE on (status, lease): the row decides races, not the caller.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = engine.execution_options(**READ_ONLY)
        self._dialect = engine.dialect.name

    async def _write(self, statement: Any) -> list[Row[Any]]:
        with database_errors():
            async with self._engine.begin() as connection:
                result = await connection.execute(statement)
                return list(result.fetchall()) if result.returns_rows else []

    async def _read(self, statement: Any) -> list[Row[Any]]:
        with database_errors():
            async with self._reader.connect() as connection:
                return list((await connection.execute(statement)).fetchall())

    async def add(
        self, name: str, payload: JobPayload, *, idempotency_key: str, now: datetime
    ) -> bool:
        data = check_job(name, payload, idempotency_key)
        rows = await self._write(
            _insert_new(self._dialect, _new_job(name, data, idempotency_key, now, now))
        )
        return bool(rows)

    @staticmethod
    def _due(now: datetime) -> ColumnElement[bool]:
        return or_(
            and_(_c.status == JobStatus.PENDING.value, _c.available_at <= now),
            and_(_c.status.in_(_LEASED), _c.locked_until <= now),
        )

    async def claim(self, now: datetime, *, limit: int, lease_seconds: float) -> list[Job]:
        due = self._due(now)
        if self._dialect == "sqlite" and not await self._read(select(_c.id).where(due).limit(1)):
            return []
        # A materialized CTE: evaluated once. As a plain `IN (subquery)`, Postgres may
        # run the LIMIT ... SKIP LOCKED sub-select more than once and claim too many.
        picked = (
            select(_c.id)
            .where(due)
            .order_by(_c.available_at, _c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("picked")
            .prefix_with("MATERIALIZED")
        )
        statement = (
            update(_jobs)
            # `due` again: the row is re-checked under its lock, whatever the plan.
            .where(_c.id.in_(select(picked.c.id)), due)
            .values(
                status=JobStatus.CLAIMED.value,
                lease=_c.lease + 1,
                locked_until=now + timedelta(seconds=lease_seconds),
                updated_at=now,
                last_error=case(
                    (_c.status == JobStatus.PENDING.value, _c.last_error),
                    else_=literal(_LEASE_EXPIRED),
                ),
            )
            .returning(*_JOB_COLUMNS)
        )
        rows = await self._write(statement)
        rows.sort(key=lambda row: (row.available_at, row.id))
        return [_job(row) for row in rows]

    async def start(self, job: Job, now: datetime, *, lease_seconds: float) -> Job | None:
        rows = await self._write(
            update(_jobs)
            .where(_c.id == job.id, _c.status == JobStatus.CLAIMED.value, _c.lease == job.lease)
            .values(
                status=JobStatus.RUNNING.value,
                attempts=_c.attempts + 1,
                locked_until=now + timedelta(seconds=lease_seconds),
                updated_at=now,
            )
            .returning(*_JOB_COLUMNS)
        )
        return _job(rows[0]) if rows else None

    def _held(self, job: Job) -> ColumnElement[bool]:
        return and_(_c.id == job.id, _c.status == JobStatus.RUNNING.value, _c.lease == job.lease)

    async def _update(self, where: ColumnElement[bool], **values: Any) -> bool:
        rows = await self._write(update(_jobs).where(where).values(**values).returning(_c.id))
        return bool(rows)

    async def extend(self, job: Job, now: datetime, *, lease_seconds: float) -> bool:
        return await self._update(
            self._held(job), locked_until=now + timedelta(seconds=lease_seconds), updated_at=now
        )

    async def complete(self, job: Job, now: datetime) -> bool:
        return await self._update(
            and_(_c.id == job.id, _c.status.notin_(_FINAL)),
            status=JobStatus.DONE.value,
            locked_until=None,
            finished_at=now,
            updated_at=now,
        )

    async def fail(self, job: Job, now: datetime, *, error: str, retry_at: datetime) -> bool:
        return await self._update(
            self._held(job),
            status=JobStatus.PENDING.value,
            available_at=retry_at,
            locked_until=None,
            last_error=error,
            updated_at=now,
        )

    async def dead_letter(self, job: Job, now: datetime, *, error: str) -> bool:
        return await self._update(
            self._held(job),
            status=JobStatus.DEAD.value,
            locked_until=None,
            last_error=error,
            finished_at=now,
            updated_at=now,
        )

    async def list_dead(self, *, limit: int = 100, before_id: int | None = None) -> list[DeadJob]:
        statement = select(_jobs).where(_c.status == JobStatus.DEAD.value)
        if before_id is not None:
            statement = statement.where(_c.id < before_id)
        rows = await self._read(
            statement.order_by(_c.finished_at.desc(), _c.id.desc()).limit(limit)
        )
        return [
            DeadJob(
                id=row.id,
                name=row.name,
                payload=dict(row.payload),
                idempotency_key=row.idempotency_key,
                attempts=row.attempts,
                last_error=row.last_error or "",
                failed_at=row.finished_at or row.updated_at,
                created_at=row.created_at,
            )
            for row in rows
        ]

    async def retry_dead(self, job_id: int, now: datetime) -> bool:
        return await self._update(
            and_(_c.id == job_id, _c.status == JobStatus.DEAD.value),
            status=JobStatus.PENDING.value,
            attempts=0,
            available_at=now,
            locked_until=None,
            finished_at=None,
            updated_at=now,
        )

    async def purge_finished(self, before: datetime) -> int:
        old = and_(_c.status == JobStatus.DONE.value, _c.finished_at < before)
        total = 0
        while True:
            chunk = select(_c.id).where(old).order_by(_c.id).limit(_PURGE_CHUNK)
            deleted = await self._write(delete(_jobs).where(_c.id.in_(chunk)).returning(_c.id))
            total += len(deleted)
            if len(deleted) < _PURGE_CHUNK:
                return total

    async def get(self, job_id: int) -> JobState | None:
        rows = await self._read(select(_jobs).where(_c.id == job_id))
        if not rows:
            return None
        row = rows[0]
        return JobState(
            id=row.id,
            name=row.name,
            idempotency_key=row.idempotency_key,
            status=JobStatus(row.status),
            attempts=row.attempts,
            lease=row.lease,
            available_at=row.available_at,
            locked_until=row.locked_until,
            last_error=row.last_error,
            finished_at=row.finished_at,
        )
