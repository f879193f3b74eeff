"""What a message costs below Portico's own code, measured in the bench's run.

A send must commit twice (the credits it holds and both messages before the model call;
the charge and the reply after it), run its statements one round trip each, and call the
model through the official SDK. Each is timed here on its own, sequentially, against the
same Postgres and the same model server as the AI phase, so the table can say how much of
the added latency is these floors and how much is Portico:

- a durable commit: a one-row INSERT transaction through asyncpg (no ORM);
- a read: `SELECT 1` through asyncpg on an open connection (a round trip);
- a write: a one-row upsert `... RETURNING` inside an open transaction through asyncpg
  (a round trip, and the server's own work: the index, the WAL record);
- the SDK: `OpenAIChatModel.complete` (the adapter a message goes through) with one short
  message, against the model's own p50 measured by wrk.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

SAMPLES = 200
# Statements of one send, BEGIN and COMMIT apart, counted with SQLAlchemy's cursor events
# around `MessageService.send` on Postgres (tests/integration/test_conversation_concurrency):
# before the model call 4 reads (the conversation, its history, the price, the usage
# counters) and 7 writes (the reservation, the balance, its ledger entry, two messages,
# the conversation's time, the message count); after it 5 writes (the reservation
# closed, the balance, its ledger entry, the reply, the token count).
SEND_READS = 4
SEND_WRITES = 12


@dataclass(frozen=True)
class Floors:
    commit_ms: float
    read_ms: float
    write_ms: float
    sdk_ms: float

    def of_a_send(self) -> float:
        """Two commits, the statements, and the SDK's call (the model's own time is in
        the direct figure already, so this slightly over-counts the SDK)."""
        statements = SEND_READS * self.read_ms + SEND_WRITES * self.write_ms
        return 2 * self.commit_ms + statements + self.sdk_ms


def measure_floors(dsn: str, model_url: str, samples: int = SAMPLES) -> Floors:
    return asyncio.run(_measure(dsn, model_url, samples))


async def _median_ms(samples: int, call: Callable[[], Awaitable[object]]) -> float:
    for _ in range(10):
        await call()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _measure(dsn: str, model_url: str, samples: int) -> Floors:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_commit_floor "
            "(id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"
        )

        async def commit() -> None:
            async with conn.transaction():
                await conn.execute("INSERT INTO bench_commit_floor DEFAULT VALUES")

        commit_ms = await _median_ms(samples, commit)
        read_ms = await _median_ms(samples, lambda: conn.fetchval("SELECT 1"))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_write_floor (id int PRIMARY KEY, n bigint NOT NULL)"
        )
        async with conn.transaction():
            write_ms = await _median_ms(
                samples,
                lambda: conn.fetchval(
                    "INSERT INTO bench_write_floor VALUES (1, 1) ON CONFLICT (id) "
                    "DO UPDATE SET n = bench_write_floor.n + 1 RETURNING n"
                ),
            )
    finally:
        await conn.close()
    return Floors(commit_ms, read_ms, write_ms, await _sdk_ms(model_url, samples))


async def _sdk_ms(model_url: str, samples: int) -> float:
    from adapters.openai.chat import OpenAIChatModel
    from core.conversations.model import ChatMessage, ChatParams, Role

    model = OpenAIChatModel(base_url=f"{model_url}/v1", api_key="bench-key", max_retries=0)
    prompt = [ChatMessage(Role.USER, "Hello, model")]
    params = ChatParams(max_output_tokens=1024, timeout_seconds=10)
    try:
        return await _median_ms(samples, lambda: model.complete(prompt, "bench-model", params))
    finally:
        await model.close()
