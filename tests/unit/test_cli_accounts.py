"""`portico create-superuser`, `portico users ...` and `portico db current` on an
embedded (SQLite file) database, through `main(argv)` as a shell would run them."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core.identity.errors import (
    InvalidAccessTokenError,
    InvalidCredentialsError,
    InvalidRefreshTokenError,
)
from core.identity.ports import IdentityUnitOfWorkFactory
from core.identity.service import AccountService, AuthenticationService, TokenService
from core.shared.query import ListQuery, parse_filters
from entrypoints.bootstrap.runtime import Runtime, start_runtime
from entrypoints.bootstrap.settings import Settings
from entrypoints.cli import main

T = TypeVar("T")
PASSWORD = "a long admin passphrase 7"
USER_PASSWORD = "correct horse battery"


def _env(monkeypatch: pytest.MonkeyPatch, database: Path, *, auto_create: bool) -> None:
    for name, value in {
        "PORTICO_DATABASE__URL": f"sqlite+aiosqlite:///{database}",
        "PORTICO_DATABASE__AUTO_CREATE": "true" if auto_create else "false",
        "PORTICO_LOG_LEVEL": "ERROR",
        "PORTICO_PASSWORDS__ARGON2_TIME_COST": "1",
        "PORTICO_PASSWORDS__ARGON2_MEMORY_KIB": "1024",
        "PORTICO_PASSWORDS__ALLOW_WEAK_HASHING": "true",
        "PORTICO_EMAIL__BACKEND": "memory",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    database = tmp_path / "cli.db"
    _env(monkeypatch, database, auto_create=True)
    return database


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def _with_runtime(body: Callable[[Runtime], Awaitable[T]]) -> T:
    async def run() -> T:
        runtime = await start_runtime(Settings(), run_jobs=False)
        try:
            return await body(runtime)
        finally:
            await runtime.aclose()

    return asyncio.run(run())


def _register(email: str, username: str) -> int:
    async def register(runtime: Runtime) -> int:
        user = await runtime.get(AccountService).register(email, username, USER_PASSWORD)
        assert user.id is not None
        return user.id

    return _with_runtime(register)


def _audit(action: str) -> list[Any]:
    async def read(runtime: Runtime) -> list[Any]:
        async with runtime.get(IdentityUnitOfWorkFactory)(read_only=True) as tx:
            page = await tx.audit.list(ListQuery(conditions=parse_filters({"action": action})))
        return page.items

    return _with_runtime(read)


def _superuser(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    email: str,
    *extra: str,
) -> dict[str, Any]:
    _stdin(monkeypatch, f"{PASSWORD}\n")
    assert main(["create-superuser", "--email", email, "--password-stdin", "--json", *extra]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


# --- create-superuser -----------------------------------------------------------------


def test_a_superuser_from_stdin_can_log_in(
    embedded: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    created = _superuser(monkeypatch, capsys, "Root@Example.com")
    assert created["email"] == "root@example.com" and created["username"] == "root"
    assert created["is_superuser"] is True and created["email_verified"] is True

    async def login(runtime: Runtime) -> tuple[int | None, bool]:
        result = await runtime.get(AuthenticationService).login("root@example.com", PASSWORD)
        return result.user.id, result.user.is_superuser

    assert _with_runtime(login) == (created["id"], True)
    (entry,) = _audit("account.superuser_created")
    assert entry.target_id == str(created["id"]) and entry.actor_id is None


def test_the_password_prompt_asks_twice_and_refuses_a_mismatch(
    embedded: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = iter([PASSWORD, PASSWORD + "x"])
    prompts: list[str] = []

    def ask(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", ask)
    assert main(["create-superuser", "--email", "root@example.com"]) == 1
    assert capsys.readouterr().err == "portico: the two passwords differ\n"
    assert prompts == ["Password: ", "Password (again): "]
    answers = iter([PASSWORD, PASSWORD])
    assert main(["create-superuser", "--email", "root@example.com"]) == 0
    assert "created superuser root <root@example.com>" in capsys.readouterr().out


def test_the_default_username_is_made_unique(
    embedded: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _register("ops@example.org", "ops")
    second = _superuser(monkeypatch, capsys, "ops@example.com")
    third = _superuser(monkeypatch, capsys, "ops@example.net")
    named = _superuser(monkeypatch, capsys, "ops@example.io", "--username", "night.shift")
    assert [second["username"], third["username"], named["username"]] == [
        "ops-2",
        "ops-3",
        "night.shift",
    ]


def test_there_is_no_password_flag(embedded: Path) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["create-superuser", "--email", "root@example.com", "--password", PASSWORD])
    assert stopped.value.code == 2


@pytest.mark.parametrize(
    ("email", "stdin", "message"),
    [
        ("not-an-email", f"{PASSWORD}\n", "portico: This is not a valid email address.\n"),
        ("root@example.com", "short\n", "portico: The password needs at least 12 characters.\n"),
        ("root@example.com", "", "portico: no password on stdin (one line expected)\n"),
    ],
)
def test_bad_input_exits_1_with_the_reason(
    embedded: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    email: str,
    stdin: str,
    message: str,
) -> None:
    _stdin(monkeypatch, stdin)
    assert main(["create-superuser", "--email", email, "--password-stdin"]) == 1
    captured = capsys.readouterr()
    assert captured.err == message and captured.out == ""
    assert _audit("account.superuser_created") == []


def test_an_existing_email_is_refused_by_name(
    embedded: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _register("ada@example.com", "ada")
    _stdin(monkeypatch, f"{PASSWORD}\n")
    assert main(["create-superuser", "--email", "ada@example.com", "--password-stdin"]) == 1
    assert capsys.readouterr().err == (
        "portico: An account with the email ada@example.com already exists.\n"
    )


# --- users ----------------------------------------------------------------------------


def test_deactivating_ends_tokens_and_sessions_and_refuses_sign_ins(
    embedded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user_id = _register("ada@example.com", "ada")

    async def scenario(runtime: Runtime) -> None:
        # A server process holding a browser session and a bearer token.
        auth = runtime.get(AuthenticationService)
        tokens = runtime.get(TokenService)
        login = await auth.login("ada@example.com", USER_PASSWORD)
        pair = await tokens.issue_pair("ada@example.com", USER_PASSWORD)
        argv = ["users", "deactivate", "--email", "ada@example.com", "--reason", "fraud"]
        assert await asyncio.to_thread(main, [*argv, "--json"]) == 0
        # This process's session store was out of the command's reach (memory backend):
        # the session is refused because the user is inactive, and so is the token.
        assert await auth.authenticate(login.token) is None
        with pytest.raises(InvalidAccessTokenError):
            await tokens.authenticate(pair.access_token)
        with pytest.raises(InvalidCredentialsError):
            await auth.login("ada@example.com", USER_PASSWORD)

    _with_runtime(scenario)
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["id"] == user_id and result["active"] is False
    assert result["deactivated_at"] is not None
    assert "PORTICO_SESSIONS__BACKEND=memory" in captured.err
    (entry,) = _audit("account.deactivated")
    assert entry.target_id == str(user_id) and entry.details["reason"] == "fraud"

    assert main(["users", "reactivate", "--id", str(user_id)]) == 0
    assert capsys.readouterr().out == "ada@example.com is active again\n"

    async def login_again(runtime: Runtime) -> bool:
        return (
            await runtime.get(AuthenticationService).login("ada@example.com", USER_PASSWORD)
        ) is not None

    assert _with_runtime(login_again)


def test_sessions_end_ends_every_token(embedded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user_id = _register("bo@example.com", "bob")

    async def issue(runtime: Runtime) -> tuple[str, str]:
        pair = await runtime.get(TokenService).issue_pair("bo@example.com", USER_PASSWORD)
        return pair.access_token, pair.refresh_token

    access, refresh = _with_runtime(issue)
    assert main(["users", "sessions-end", "--id", str(user_id), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # Browser sessions live in the server's memory here: none in this process.
    assert result == {"id": user_id, "email": "bo@example.com", "sessions_ended": 0}

    async def still_works(runtime: Runtime) -> bool:
        try:
            await runtime.get(TokenService).authenticate(access)
        except InvalidAccessTokenError:
            return False
        return True

    assert not _with_runtime(still_works)

    async def refreshes(runtime: Runtime) -> bool:
        try:
            await runtime.get(TokenService).refresh(refresh)
        except InvalidRefreshTokenError:
            return False
        return True

    assert not _with_runtime(refreshes)
    (entry,) = _audit("account.sessions_ended")
    assert entry.target_id == str(user_id) and entry.details["revoked"] == 1


@pytest.mark.parametrize(
    "target", [["--email", "nobody@example.com"], ["--id", "4242"]], ids=["email", "id"]
)
@pytest.mark.parametrize("action", ["deactivate", "sessions-end", "reactivate", "verify-email"])
def test_a_missing_user_exits_1(
    embedded: Path, capsys: pytest.CaptureFixture[str], action: str, target: list[str]
) -> None:
    assert main(["users", action, *target]) == 1
    captured = capsys.readouterr()
    assert captured.err == "portico: The user does not exist.\n" and captured.out == ""


def test_users_need_exactly_one_of_email_and_id(embedded: Path) -> None:
    for argv in (
        ["users", "deactivate"],
        ["users", "deactivate", "--email", "a@b.co", "--id", "1"],
    ):
        with pytest.raises(SystemExit) as stopped:
            main(argv)
        assert stopped.value.code == 2


def test_verify_email_marks_the_account(embedded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user_id = _register("cy@example.com", "cyd")
    assert main(["users", "verify-email", "--email", "cy@example.com", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["email_verified"] is True

    async def verified(runtime: Runtime) -> bool:
        return (await runtime.get(AccountService).get(user_id)).email_verified

    assert _with_runtime(verified)


# --- db and jobs ----------------------------------------------------------------------


def test_db_current_says_whether_the_database_is_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, tmp_path / "migrated.db", auto_create=False)
    assert main(["db", "current", "--json"]) == 1
    before = json.loads(capsys.readouterr().out)
    assert before["current"] == [] and before["up_to_date"] is False and before["heads"]
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["db", "current", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["current"] == after["heads"] == before["heads"] and after["up_to_date"]
    assert main(["db", "current"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_db_downgrade_needs_its_revision_named_and_goes_one_step_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, tmp_path / "migrated.db", auto_create=False)
    assert main(["db", "upgrade"]) == 0
    with pytest.raises(SystemExit) as usage:  # no default: never every table by accident
        main(["db", "downgrade"])
    assert usage.value.code == 2
    capsys.readouterr()
    assert main(["db", "downgrade", "-1"]) == 0
    assert main(["db", "current", "--json"]) == 1
    one_back = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert one_back["current"] and one_back["current"] != one_back["heads"]


def test_db_upgrade_to_an_unknown_revision_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, tmp_path / "migrated.db", auto_create=False)
    assert main(["db", "upgrade", "nope"]) == 1
    assert "nope" in capsys.readouterr().err


def test_jobs_dead_prints_json(embedded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "dead", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    "argv",
    [["db", "current"], ["users", "deactivate", "--id", "1"], ["jobs", "dead", "--json"]],
    ids=["db", "users", "jobs"],
)
def test_an_unreachable_database_exits_3(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    # The database file would live under a regular file: it cannot be opened at all.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    _env(monkeypatch, blocker / "portico.db", auto_create=True)
    assert main(argv) == 3
    captured = capsys.readouterr()
    assert captured.err.startswith("portico: ") and "unavailable" in captured.err
    assert captured.out == ""
