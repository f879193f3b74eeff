"""Everything under load, set up and torn down: database, Portico, accounts, ceilings.

`BenchStack` is a context manager. Entering it creates the bench database, migrates it,
starts Portico, registers and logs in the accounts through the API, seeds the ceiling's
session, starts both ceilings and checks that each ceiling answers what Portico answers.
Leaving it (normally, on an error or on Ctrl-C) stops every process it started, deletes
the bench's Redis keys and drops the bench database, in that order.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from bench.accounts import Account, Cookie, PorticoApi, PreSession
from bench.ceilings.minimal_io import session_key, session_value
from bench.ceilings.serving import UvicornFlags, portico_uvicorn_flags
from bench.options import BenchOptions
from bench.portico_server import (
    PorticoSetup,
    absolute_pythonpath,
    migrate,
    portico_env,
    start_portico,
)
from bench.processes import (
    CpuPlan,
    ManagedProcess,
    Memory,
    free_port,
    native_libraries,
    pinned,
    read_memory,
    wait_until_answering,
)
from bench.services import BenchDatabase, delete_keys, set_key

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECONDS = 60
CEILING_SESSION_TTL_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Fixtures:
    """What the scenarios need: where each server listens and who signs in."""

    portico_url: str
    health_ceiling_url: str
    io_ceiling_url: str
    session_cookie: Cookie
    reader: Account
    login_account: Account
    login_pre_session: PreSession


class BenchStack:
    def __init__(self, options: BenchOptions, cpus: CpuPlan) -> None:
        self.options = options
        self.cpus = cpus
        run_id = secrets.token_hex(5)
        self.key_prefix = f"bench:{run_id}:"
        self.database = BenchDatabase(options.database_url, f"portico_bench_{run_id}")
        self.scratch = Path(tempfile.gettempdir()) / f"portico-bench-{run_id}"
        self.api: PorticoApi | None = None
        self.portico: ManagedProcess | None = None
        self.ceilings: dict[str, ManagedProcess] = {}
        self.startup_memory: Memory | None = None
        self.uvicorn_flags: UvicornFlags | None = None
        self.checks: list[str] = []
        self.portico_env: dict[str, str] = {}
        self.teardown_notes: list[str] = []
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> BenchStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit.close()

    @property
    def portico_log(self) -> Path:
        return self.scratch / "portico.log"

    def start(self) -> Fixtures:
        self.scratch.mkdir(parents=True, exist_ok=False)
        base_env = absolute_pythonpath(dict(os.environ), REPO_ROOT)
        # Registered first, so they run last: after every process has stopped.
        self.database.create()
        self._exit.callback(self._drop_database)
        self._exit.callback(self._delete_redis_keys)

        setup = PorticoSetup(self.database.sqlalchemy_url, self.options.redis_url, self.key_prefix)
        env = portico_env(base_env, setup)
        self.portico_env = env
        migrate(env, self.scratch, self.portico_log)
        port = free_port()
        self.portico = self._started(
            start_portico(env, port, self.scratch, self.portico_log, self.cpus.server)
        )
        portico_url = f"http://127.0.0.1:{port}"
        wait_until_answering(f"{portico_url}/ready", self.portico, START_TIMEOUT_SECONDS)
        self.startup_memory = read_memory(self.portico.pid)

        self.api = PorticoApi(portico_url)
        self._exit.callback(self.api.close)
        return self._start_ceilings(base_env, setup, self._accounts(portico_url))

    def _accounts(self, portico_url: str) -> Fixtures:
        assert self.api is not None
        tag = self.key_prefix.split(":")[1]
        reader = Account(f"reader-{tag}@example.com", f"reader_{tag}")
        login_account = Account(f"login-{tag}@example.com", f"login_{tag}")
        pre = self.api.pre_session()
        self.api.register(reader, pre)
        self.api.register(login_account, pre)
        cookie = self.api.login(reader, pre)
        # The login stream sends a pre-session pair of its own, as a browser would.
        return Fixtures(
            portico_url=portico_url,
            health_ceiling_url="",
            io_ceiling_url="",
            session_cookie=cookie,
            reader=reader,
            login_account=login_account,
            login_pre_session=self.api.pre_session(),
        )

    def _start_ceilings(self, env: dict[str, str], setup: PorticoSetup, fx: Fixtures) -> Fixtures:
        assert self.api is not None
        health = self.api.get("/health")
        me = self.api.get("/api/v1/users/me", {"Cookie": fx.session_cookie.header()})
        csrf = self.api.get("/api/v1/auth/csrf")
        for what, response in (("/health", health), ("/users/me", me), ("/auth/csrf", csrf)):
            if response.status_code != 200:
                raise RuntimeError(f"Portico's {what} answered {response.status_code}")
        user_id = int(me.json()["id"])
        ceiling_prefix = self.key_prefix + "ceiling:session:"
        set_key(
            self.options.redis_url,
            session_key(ceiling_prefix, fx.session_cookie.value),
            session_value(user_id, time.time() + CEILING_SESSION_TTL_SECONDS),
            CEILING_SESSION_TTL_SECONDS,
        )
        self.uvicorn_flags = portico_uvicorn_flags()
        flags = json.dumps(self.uvicorn_flags.flags)
        csrf_cookie = next(iter(csrf.cookies.keys()))
        health_port, io_port = free_port(), free_port()
        self.ceilings["health ceiling"] = self._ceiling(
            "health ceiling",
            [
                "bench.ceilings.health",
                f"--port={health_port}",
                f"--uvicorn-flags={flags}",
                f"--health-body-b64={base64.b64encode(health.content).decode()}",
                f"--health-content-type={health.headers['content-type']}",
                f"--csrf-cookie={csrf_cookie}",
                f"--csrf-token-length={len(csrf.json()['csrf_token'])}",
                f"--health-headers-json={json.dumps(_answer_headers(health))}",
            ],
            env,
            health_port,
        )
        self.ceilings["minimal-I/O ceiling"] = self._ceiling(
            "minimal-I/O ceiling",
            [
                "bench.ceilings.minimal_io",
                f"--port={io_port}",
                f"--uvicorn-flags={flags}",
                f"--redis-url={setup.redis_url}",
                f"--database-dsn={self.database.dsn}",
                f"--session-prefix={ceiling_prefix}",
                f"--cookie={fx.session_cookie.name}",
            ],
            env,
            io_port,
        )
        fx = dataclasses.replace(
            fx,
            health_ceiling_url=f"http://127.0.0.1:{health_port}",
            io_ceiling_url=f"http://127.0.0.1:{io_port}",
        )
        self._compare(fx, health, me)
        return fx

    def start_server(self, name: str, args: list[str], port: int) -> ManagedProcess:
        """Another bench server (`python -m <args>`), stopped with the stack."""
        return self._ceiling(name, args, self.portico_env, port)

    def adopt(self, process: ManagedProcess) -> ManagedProcess:
        """`process` is stopped with the stack."""
        return self._started(process)

    def _ceiling(
        self, name: str, args: list[str], env: dict[str, str], port: int
    ) -> ManagedProcess:
        argv = pinned([sys.executable, "-m", *args], self.cpus.server)
        log = self.scratch / (args[0].rsplit(".", 1)[-1] + "-ceiling.log")
        process = self._started(
            ManagedProcess.start(argv, env=env, cwd=self.scratch, log_path=log, name=name)
        )
        wait_until_answering(f"http://127.0.0.1:{port}/health", process, START_TIMEOUT_SECONDS)
        return process

    def _compare(self, fx: Fixtures, health: httpx.Response, me: httpx.Response) -> None:
        """Each ceiling must answer what Portico answers, or its ratio means nothing."""
        with httpx.Client(timeout=10) as client:
            bare_health = client.get(f"{fx.health_ceiling_url}/health")
            bare_me = client.get(
                f"{fx.io_ceiling_url}/api/v1/users/me",
                headers={"Cookie": fx.session_cookie.header()},
            )
            bare_csrf = client.get(f"{fx.health_ceiling_url}/api/v1/auth/csrf")
        pairs = (("/health", health, bare_health), ("/api/v1/users/me", me, bare_me))
        for path, portico, bare in pairs:
            same_type = portico.headers["content-type"] == bare.headers.get("content-type")
            if bare.status_code != 200 or portico.content != bare.content or not same_type:
                raise RuntimeError(
                    f"the ceiling's {path} differs from Portico's:\n"
                    f"  portico {portico.status_code} {portico.headers['content-type']} "
                    f"{portico.content!r}\n"
                    f"  ceiling {bare.status_code} {bare.headers.get('content-type')} "
                    f"{bare.content!r}"
                )
            self.checks.append(f"{path}: ceiling body and content type identical to Portico's")
        if bare_csrf.status_code != 200 or set(bare_csrf.json()) != {"csrf_token"}:
            raise RuntimeError(f"the ceiling's /api/v1/auth/csrf answered {bare_csrf.text!r}")

    def _started(self, process: ManagedProcess) -> ManagedProcess:
        self._exit.callback(process.stop)
        return process

    def native_libraries(self) -> dict[str, dict[str, bool]]:
        processes = {"portico": self.portico, **self.ceilings}
        return {name: native_libraries(p.pid) for name, p in processes.items() if p is not None}

    def _delete_redis_keys(self) -> None:
        try:
            removed = delete_keys(self.options.redis_url, self.key_prefix)
            self.teardown_notes.append(f"deleted {removed} Redis keys under {self.key_prefix}")
        except Exception as exc:
            self.teardown_notes.append(f"could not delete Redis keys {self.key_prefix}*: {exc}")

    def _drop_database(self) -> None:
        try:
            self.database.drop()
            self.teardown_notes.append(f"dropped database {self.database.name}")
        except Exception as exc:
            self.teardown_notes.append(f"could not drop database {self.database.name}: {exc}")


# Set per answer by the server or the response itself, so not copied to the ceiling.
_NOT_COPIED = frozenset({"content-length", "content-type", "date", "server", "x-request-id"})


def _answer_headers(response: httpx.Response) -> dict[str, str]:
    """The headers Portico adds to every answer (security headers and the like)."""
    return {k: v for k, v in response.headers.items() if k.lower() not in _NOT_COPIED}
