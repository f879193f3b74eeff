"""Everything with a lifecycle: opened when the selected adapter first needs it, closed
by `Container.shutdown_resources()`. Adapters are imported inside each function, so an
unselected one is never imported (see `lazy.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from entrypoints.bootstrap.settings import Settings

if TYPE_CHECKING:
    import httpx
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

    from entrypoints.bootstrap.tracing import Tracing


async def tracing(settings: Settings) -> AsyncIterator[Tracing | None]:
    """The runtime's tracer provider, or None with tracing off (nothing imported).
    At shutdown what is batched is exported, off the event loop."""
    if not settings.tracing.enabled:
        yield None
        return
    from entrypoints.bootstrap.tracing import start_tracing

    started = start_tracing(settings.tracing)
    try:
        yield started
    finally:
        await asyncio.to_thread(started.shutdown)


async def engine(settings: Settings, tracing: Tracing | None = None) -> AsyncIterator[AsyncEngine]:
    from adapters.sqlalchemy.engine import create_engine

    db = settings.database
    created = create_engine(
        db.url,
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        pool_timeout=db.pool_timeout_seconds,
        connect_timeout=db.connect_timeout_seconds,
        statement_timeout_ms=db.statement_timeout_ms,
        echo=settings.debug,
    )
    if tracing is not None:
        tracing.instrument_engine(created)
    try:
        yield created
    finally:
        await created.dispose()


async def redis(settings: Settings, tracing: Tracing | None = None) -> AsyncIterator[Redis]:
    if not settings.redis.url:
        raise ValueError("PORTICO_REDIS__URL must be set when a Redis backend is selected")
    from adapters.redis.client import create_redis

    client = create_redis(
        settings.redis.url,
        connect_timeout=settings.redis.connect_timeout_seconds,
        socket_timeout=settings.redis.socket_timeout_seconds,
        max_connections=settings.redis.max_connections,
    )
    if tracing is not None:
        tracing.instrument_redis(client)
    try:
        yield client
    finally:
        await client.aclose()


async def memcached(settings: Settings) -> AsyncIterator[Any]:
    from adapters.memcached.client import create_memcached

    m = settings.memcached
    client = create_memcached(
        m.servers,
        connect_timeout=m.connect_timeout_seconds,
        timeout=m.timeout_seconds,
        max_pool_size=m.max_pool_size,
    )
    try:
        yield client
    finally:
        client.close()


async def celery_dispatcher(settings: Settings) -> AsyncIterator[Any]:
    from adapters.celery.dispatcher import CeleryJobDispatcher
    from entrypoints.bootstrap.celery import celery_options

    dispatcher = CeleryJobDispatcher(celery_options(settings))
    try:
        yield dispatcher
    finally:
        await dispatcher.aclose()


async def oauth_http_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """One pooled client per process for every OAuth provider, closed at shutdown."""
    from adapters.oauth.client import new_http_client

    client = new_http_client(settings.oauth.timeout_seconds)
    try:
        yield client
    finally:
        await client.aclose()


async def stripe_gateway(settings: Settings) -> AsyncIterator[Any]:
    """The Stripe gateway (one SDK client and its connection pool), closed at shutdown."""
    key = settings.stripe.api_key
    if key is None:
        raise ValueError(
            "PORTICO_STRIPE__API_KEY must be set when PORTICO_PAYMENTS__BACKEND=stripe"
        )
    import stripe

    from adapters.stripe.gateway import StripeGateway

    # The SDK's telemetry writes an id file under ~/.config on the first request (a
    # blocking write in the event loop) and reports request timings to Stripe: off.
    stripe.enable_telemetry = False
    gateway = StripeGateway(
        key.get_secret_value(),
        api_base=settings.stripe.api_base,
        timeout_seconds=settings.payments.timeout_seconds,
        max_retries=settings.payments.max_retries,
    )
    try:
        yield gateway
    finally:
        await gateway.close()


async def openai_chat_model(settings: Settings) -> AsyncIterator[Any]:
    """The OpenAI-compatible chat model (one SDK client and its pool), closed at
    shutdown."""
    llm = settings.llm
    if llm.api_key is None:
        raise ValueError("PORTICO_LLM__API_KEY must be set when PORTICO_LLM__BACKEND=openai")
    from adapters.openai.chat import OpenAIChatModel

    model = OpenAIChatModel(
        base_url=llm.base_url,
        api_key=llm.api_key.get_secret_value(),
        timeout_seconds=llm.timeout_seconds,
        max_retries=llm.max_retries,
    )
    try:
        yield model
    finally:
        await model.close()
