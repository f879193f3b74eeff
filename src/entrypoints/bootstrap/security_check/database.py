"""The database: a real server, a real password, migrations, no SQL in the logs."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from entrypoints.bootstrap.security_check.model import Finding, env_var, error, rule
from entrypoints.bootstrap.settings import Settings

# Database passwords that ship as defaults in images, tutorials and compose files.
_DEFAULT_DATABASE_PASSWORDS = frozenset(
    {"postgres", "password", "admin", "root", "changeme", "secret", "portico", "example", "test"}
)

_BACKEND = "database.backend"
_URL = "database.url"
_AUTO_CREATE = "database.auto_create"


# `debug` turns on the engine's SQL echo, which is all it does.
@rule("debug")
def debug(settings: Settings) -> Iterator[Finding]:
    if settings.debug:
        yield error(
            "debug",
            "debug",
            f"{env_var('debug')} is on (SQL echo with parameter values in the logs); "
            "set it to false",
        )


@rule(_BACKEND)
def database_backend(settings: Settings) -> Iterator[Finding]:
    if settings.database.backend == "memory":
        yield error(
            "database.memory",
            _BACKEND,
            f"{env_var(_BACKEND)}=memory keeps every account in process memory "
            "(lost at restart); set it to sql with a Postgres URL",
        )


@rule(_BACKEND, _URL)
def database_url(settings: Settings) -> Iterator[Finding]:
    if settings.database.backend != "sql":
        return  # the URL is unused; the backend rule reports the real problem
    name = env_var(_URL)
    try:
        url = make_url(settings.database.url)
    except ArgumentError:
        yield error("database.url_invalid", _URL, f"{name} is not a valid database URL")
        return
    if url.get_backend_name() == "sqlite":
        yield error(
            "database.sqlite",
            _URL,
            f"{name} points to SQLite, which is for the embedded profile only (one "
            "machine, no concurrent writers); use postgresql+asyncpg://...",
        )
        return
    password = url.password
    if password is None and "password" in url.query:
        value = url.query["password"]
        password = value if isinstance(value, str) else value[0]
    # No host (or a directory as host) means a Unix socket, where peer authentication
    # needs no password at all.
    query_host = url.query.get("host")
    on_socket = not url.host or str(query_host or "").startswith("/")
    if not password:
        if not on_socket:
            yield error(
                "database.password_empty",
                _URL,
                f"{name} has no password for a network connection; set a strong one",
            )
        return
    username = url.username or ""
    if password.lower() in _DEFAULT_DATABASE_PASSWORDS or password == username:
        yield error(
            "database.password_default",
            _URL,
            f"{name} uses a default or guessable password (a well-known default or the user "
            "name); set a strong one",
        )


@rule(_AUTO_CREATE)
def database_auto_create(settings: Settings) -> Iterator[Finding]:
    # Tables created from the records bypass migrations: the schema drifts from the
    # migration history, and the next `db upgrade` fails or does damage.
    if settings.database.auto_create:
        yield error(
            "database.auto_create",
            _AUTO_CREATE,
            f"{env_var(_AUTO_CREATE)} is on; set it to false and run `portico db upgrade` instead",
        )
