"""Settings from the environment (prefix `PORTICO_`, nesting with `__`) and `.env`.

Every field here is documented in the README's settings table.
"""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/portico.db"


class DatabaseSettings(BaseModel):
    url: str = DEFAULT_SQLITE_URL
    # `memory` keeps users in process (unit tests, throwaway demos); `sql` is the default.
    backend: Literal["sql", "memory"] = "sql"
    pool_size: int = Field(10, ge=1)
    max_overflow: int = Field(10, ge=0)
    pool_timeout_seconds: float = Field(5.0, gt=0)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    statement_timeout_ms: int = Field(15_000, ge=100)
    # Create missing tables at startup instead of migrating (tests only; refused in production).
    auto_create: bool = False


class RedisSettings(BaseModel):
    url: str | None = None
    cache_db: int = Field(0, ge=0, le=15)
    rate_limit_db: int = Field(1, ge=0, le=15)
    sessions_db: int = Field(2, ge=0, le=15)
    results_db: int = Field(3, ge=0, le=15)
    connect_timeout_seconds: float = Field(2.0, gt=0)
    socket_timeout_seconds: float = Field(2.0, gt=0)
    max_connections: int = Field(50, ge=1)


class SessionSettings(BaseModel):
    backend: Literal["memory", "redis"] = "memory"
    # None means: secure in production, plain in development (so http://localhost works).
    cookie_secure: bool | None = None
    cookie_name: str = "portico_session"
    idle_timeout_seconds: int = Field(30 * 60, ge=60)
    absolute_lifetime_seconds: int = Field(12 * 60 * 60, ge=60)
    touch_interval_seconds: int = Field(60, ge=0)
    # Redis key prefix, so several deployments (or test runs) can share one database.
    key_prefix: str = "portico:sessions:"


class PasswordSettings(BaseModel):
    min_length: int = Field(12, ge=8, le=128)
    argon2_time_cost: int = Field(2, ge=1)
    argon2_memory_kib: int = Field(19_456, ge=8)
    argon2_parallelism: int = Field(1, ge=1)
    max_concurrent_hashes: int = Field(2, ge=1)
    # Lets tests use cheap argon2 parameters; the security check refuses it in production.
    allow_weak_hashing: bool = False


class HttpSettings(BaseModel):
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # Origins (scheme://host[:port]) allowed on unsafe requests besides the API's own origin.
    trusted_origins: list[str] = Field(default_factory=list)
    docs_enabled: bool = True


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PORTICO_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["development", "test", "production"] = "development"
    debug: bool = False
    secret_key: SecretStr | None = None
    log_level: str = "INFO"

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    passwords: PasswordSettings = Field(default_factory=PasswordSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)

    _secret_key_generated: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _fill_secret_key(self) -> Settings:
        if self.secret_key is None:
            self.secret_key = SecretStr(secrets.token_urlsafe(48))
            self._secret_key_generated = True
        return self

    @property
    def secret_key_generated(self) -> bool:
        """True when no secret key was configured and a random one was made for this process."""
        return self._secret_key_generated

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def cookie_secure(self) -> bool:
        if self.sessions.cookie_secure is None:
            return self.is_production
        return self.sessions.cookie_secure

    @property
    def session_cookie_name(self) -> str:
        # `__Host-` makes browsers refuse the cookie unless Secure, Path=/ and no Domain.
        return (
            f"__Host-{self.sessions.cookie_name}"
            if self.cookie_secure
            else self.sessions.cookie_name
        )

    def secret(self) -> str:
        assert self.secret_key is not None  # filled by the validator
        return self.secret_key.get_secret_value()
