"""`portico seed` and `portico credits grant` on an embedded (SQLite file) database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.identity.service import AccountService
from core.shared.query import PageRequest
from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.settings import Settings
from entrypoints.cli import main


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    database = tmp_path / "cli.db"
    for name, value in {
        "PORTICO_DATABASE__URL": f"sqlite+aiosqlite:///{database}",
        "PORTICO_DATABASE__AUTO_CREATE": "true",
        "PORTICO_LOG_LEVEL": "ERROR",
        "PORTICO_PASSWORDS__ARGON2_TIME_COST": "1",
        "PORTICO_PASSWORDS__ARGON2_MEMORY_KIB": "1024",
        "PORTICO_PASSWORDS__ALLOW_WEAK_HASHING": "true",
        "PORTICO_EMAIL__BACKEND": "memory",
    }.items():
        monkeypatch.setenv(name, value)
    return database


def test_seed_creates_the_default_catalog_once(
    embedded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert "created tier:free" in first and "created product:large" in first
    assert main(["seed"]) == 0
    again = capsys.readouterr().out.splitlines()
    assert all(line.startswith("kept ") for line in again) and len(again) == len(first)

    async def tiers() -> list[str]:
        runtime = await start_runtime(Settings(), run_jobs=False)
        try:
            return [t.code for t in await runtime.get(CatalogService).public_tiers()]
        finally:
            await runtime.aclose()

    assert asyncio.run(tiers()) == ["free", "pro", "enterprise"]


def test_credits_grant_writes_one_entry_and_one_audit_record(
    embedded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def register() -> int:
        runtime = await start_runtime(Settings(), run_jobs=False)
        try:
            user = await runtime.get(AccountService).register(
                "ada@example.com", "ada", "correct horse battery"
            )
            assert user.id is not None
            return user.id
        finally:
            await runtime.aclose()

    user_id = asyncio.run(register())
    argv = ["credits", "grant", "--email", "ADA@example.com", "--amount", "250"]
    assert main([*argv, "--reason", "support ticket 12", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["user_id"] == user_id and result["granted"] == 250 and result["balance"] == 250

    async def ledger() -> tuple[int, list[str], list[dict[str, object]]]:
        runtime = await start_runtime(Settings(), run_jobs=False)
        try:
            balance, page = await runtime.get(CreditService).history(user_id, PageRequest(limit=10))
            notes = [e.note for e in page.items]
            from core.billing.ports import BillingUnitOfWorkFactory
            from core.shared.query import ListQuery, parse_filters

            async with runtime.get(BillingUnitOfWorkFactory)(read_only=True) as tx:
                audit = await tx.audit.list(
                    ListQuery(conditions=parse_filters({"action": "credits.granted"}))
                )
            return balance, notes, [e.details for e in audit.items]
        finally:
            await runtime.aclose()

    balance, notes, audit = asyncio.run(ledger())
    assert balance == 250 and notes == ["support ticket 12"]
    assert len(audit) == 1 and audit[0]["amount"] == 250 and audit[0]["source"] == "cli"


def test_credits_grant_refuses_unknown_accounts(
    embedded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["credits", "grant", "--email", "nobody@example.com", "--amount", "5"]
    assert main([*argv, "--reason", "x"]) == 1
    assert capsys.readouterr().err.strip() == "portico: The user does not exist."


@pytest.mark.parametrize("amount", ["0", "-3", "ten"])
def test_credits_grant_needs_a_positive_whole_amount(embedded: Path, amount: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["credits", "grant", "--email", "a@b.co", "--amount", amount, "--reason", "x"])
    assert stopped.value.code == 2


def _register(email: str, username: str) -> int:
    async def run() -> int:
        runtime = await start_runtime(Settings(), run_jobs=False)
        try:
            user = await runtime.get(AccountService).register(
                email, username, "correct horse battery"
            )
            assert user.id is not None
            return user.id
        finally:
            await runtime.aclose()

    return asyncio.run(run())


def test_tier_set_moves_the_user_and_audits_it(
    embedded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed"]) == 0
    user_id = _register("bo@example.com", "bob")
    argv = ["tier", "set", "--email", "bo@example.com", "--code", "pro", "--reason", "beta"]
    assert main(argv) == 0
    assert "bo@example.com is now on tier pro" in capsys.readouterr().out

    async def read() -> tuple[str, list[dict[str, object]]]:
        runtime = await start_runtime(Settings(), run_jobs=False)
        try:
            user = await runtime.get(AccountService).get(user_id)
            from core.billing.ports import BillingUnitOfWorkFactory
            from core.shared.query import ListQuery, parse_filters

            async with runtime.get(BillingUnitOfWorkFactory)(read_only=True) as tx:
                audit = await tx.audit.list(
                    ListQuery(conditions=parse_filters({"action": "account.tier_changed"}))
                )
            return user.tier_code, [e.details for e in audit.items]
        finally:
            await runtime.aclose()

    tier_code, audit = asyncio.run(read())
    assert tier_code == "pro"
    assert len(audit) == 1 and audit[0]["tier"] == "pro" and audit[0]["previous"] == "free"
    assert audit[0]["reason"] == "beta"


def test_tier_set_refuses_an_unknown_tier_and_changes_nothing(
    embedded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed"]) == 0
    user_id = _register("cy@example.com", "cyd")
    capsys.readouterr()
    argv = ["tier", "set", "--email", "cy@example.com", "--code", "gold", "--reason", "x"]
    assert main(argv) == 1
    assert capsys.readouterr().err.startswith("portico: ")

    async def tier_of() -> str:
        runtime = await start_runtime(Settings(), run_jobs=False)
        try:
            return (await runtime.get(AccountService).get(user_id)).tier_code
        finally:
            await runtime.aclose()

    assert asyncio.run(tier_of()) == "free"
