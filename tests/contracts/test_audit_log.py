"""The `AuditLog` contract, through the identity unit of work, on every adapter.

One suite, three backends: in memory, SQLite (a file per test) and Postgres.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from core.audit.errors import UnsafeAuditEntryError
from core.audit.model import AuditEntry, AuditOutcome
from core.identity.errors import EmailTakenError
from core.identity.model import Email, User, Username
from core.identity.ports import IdentityUnitOfWorkFactory
from core.shared.query import InvalidQueryError, ListQuery, PageRequest, parse_filters, parse_sort

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def entry(n: int = 1, **changes: object) -> AuditEntry:
    base = AuditEntry(
        action="auth.login",
        outcome=AuditOutcome.SUCCESS,
        occurred_at=T0 + timedelta(minutes=n),
        actor_id=n,
        target_type="user",
        target_id=str(n),
        ip="203.0.113.9",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        details={"reason": "ok", "count": n, "remembered": False, "note": None},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def record(uow: IdentityUnitOfWorkFactory, *entries: AuditEntry) -> None:
    async with uow() as tx:
        for item in entries:
            await tx.audit.record(item)
        await tx.commit()


async def everything(uow: IdentityUnitOfWorkFactory) -> list[AuditEntry]:
    async with uow(read_only=True) as tx:
        return (await tx.audit.list(ListQuery(page=PageRequest(limit=100)))).items


async def test_a_committed_entry_is_listed_with_every_field(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    written = entry(1, outcome=AuditOutcome.FAILURE)
    await record(identity_uow, written)
    (stored,) = await everything(identity_uow)
    assert stored.id is not None and stored.id > 0
    assert dataclasses.replace(stored, id=None) == written
    assert stored.outcome is AuditOutcome.FAILURE
    assert stored.occurred_at.utcoffset() == timedelta(0)
    assert stored.details == {"reason": "ok", "count": 1, "remembered": False, "note": None}


async def test_entries_without_optional_fields_round_trip(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    bare = AuditEntry(action="auth.logout", outcome=AuditOutcome.SUCCESS, occurred_at=T0)
    await record(identity_uow, bare)
    (stored,) = await everything(identity_uow)
    assert dataclasses.replace(stored, id=None) == bare
    assert stored.details == {} and stored.actor_id is None and stored.ip is None


async def test_entries_exist_only_if_their_transaction_commits(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    async with identity_uow() as tx:
        await tx.audit.record(entry(1))
        # Visible inside its own transaction, not to another one (a read-only unit
        # reads beside the writer on every backend, SQLite's WAL included).
        assert [e.actor_id for e in (await tx.audit.list(ListQuery())).items] == [1]
        assert await everything(identity_uow) == []
    # Left without commit: rolled back.
    assert await everything(identity_uow) == []

    async with identity_uow() as tx:
        await tx.audit.record(entry(2))
        await tx.rollback()
    assert await everything(identity_uow) == []

    await record(identity_uow, entry(3))
    assert [e.actor_id for e in await everything(identity_uow)] == [3]


async def test_an_entry_shares_the_fate_of_the_change_it_describes(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    async with identity_uow() as tx:
        await tx.users.add(
            User(email=Email("a@example.com"), username=Username("alice"), password_hash="x")
        )
        await tx.commit()
    # The change fails (duplicate email): the entry written with it goes too.
    with pytest.raises(EmailTakenError):
        async with identity_uow() as tx:
            await tx.audit.record(entry(1, action="account.registered"))
            await tx.users.add(
                User(email=Email("a@example.com"), username=Username("other"), password_hash="x")
            )
            await tx.commit()
    assert await everything(identity_uow) == []

    async with identity_uow() as tx:
        user = await tx.users.add(
            User(email=Email("b@example.com"), username=Username("bob"), password_hash="x")
        )
        await tx.audit.record(entry(2, action="account.registered", target_id=str(user.id)))
        await tx.commit()
    (stored,) = await everything(identity_uow)
    assert stored.action == "account.registered" and stored.target_id == str(user.id)


@pytest.mark.parametrize(
    "details",
    [
        {"password": "x"},
        {"new_password": "x"},
        {"reset_token": "x"},
        {"session_id": 3},
        {"token_hash": "x"},
        {"csrf": "x"},
        {"Cookie": "x"},
        {"value": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"},
        {"value": "Kq3v9XwT0pL8mZr2Yb6Nc1Hd5Fg7Js4Ae-_Qo0Uy9Ti"},  # a 256-bit token
        {"value": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
        {"nested": ["a"]},  # not a scalar
        {"too_long": "x" * 201},
    ],
)
async def test_the_secret_guard_refuses_entries_that_could_hold_a_secret(
    identity_uow: IdentityUnitOfWorkFactory, details: dict[str, object]
) -> None:
    with pytest.raises(UnsafeAuditEntryError):
        entry(1, details=details)
    # Also when the details were changed after the entry passed its own check.
    smuggled = entry(1)
    smuggled.details.clear()
    smuggled.details.update(details)  # type: ignore[arg-type]
    async with identity_uow() as tx:
        with pytest.raises(UnsafeAuditEntryError):
            await tx.audit.record(smuggled)
        await tx.commit()
    assert await everything(identity_uow) == []


@pytest.mark.parametrize(
    "details",
    [
        {"reason": "wrong_password"},
        {"count": 3, "keep_current": True},
        {"known_account": False},
        {"email_domain": "example.com"},
        {"reason": "a reason with spaces and a digit 42"},
    ],
)
def test_the_guard_lets_ordinary_facts_through(details: dict[str, object]) -> None:
    assert entry(1, details=details).details == details


def test_the_guard_checks_the_action_the_target_and_the_time() -> None:
    with pytest.raises(UnsafeAuditEntryError):
        entry(1, action="Login!")
    with pytest.raises(UnsafeAuditEntryError):
        entry(1, target_id="Kq3v9XwT0pL8mZr2Yb6Nc1Hd5Fg7Js4Ae-_Qo0Uy9Ti")
    with pytest.raises(UnsafeAuditEntryError):
        entry(1, target_type="Session Token")
    with pytest.raises(UnsafeAuditEntryError):
        entry(1, occurred_at=datetime(2026, 1, 1))  # naive


async def test_list_is_newest_first_and_filters(identity_uow: IdentityUnitOfWorkFactory) -> None:
    await record(
        identity_uow,
        entry(1),
        entry(2, action="auth.logout"),
        entry(3, outcome=AuditOutcome.FAILURE, actor_id=None, ip="198.51.100.7"),
        entry(4, actor_id=1, action="auth.logout"),
    )
    # Same instant, later id: newer.
    await record(identity_uow, entry(4, actor_id=2, action="auth.logout_all"))

    async def query(sort: str | None = None, **filters: object) -> list[tuple[int | None, str]]:
        async with identity_uow(read_only=True) as tx:
            page = await tx.audit.list(
                ListQuery(conditions=parse_filters(filters), sort=parse_sort(sort))
            )
        return [(e.actor_id, e.action) for e in page.items]

    assert await query() == [
        (2, "auth.logout_all"),
        (1, "auth.logout"),
        (None, "auth.login"),
        (2, "auth.logout"),
        (1, "auth.login"),
    ]
    assert await query(actor_id=1) == [(1, "auth.logout"), (1, "auth.login")]
    assert await query(action="auth.logout") == [(1, "auth.logout"), (2, "auth.logout")]
    assert await query(outcome="failure") == [(None, "auth.login")]
    assert await query(actor_id__isnull=True) == [(None, "auth.login")]
    assert await query(ip="198.51.100.7") == [(None, "auth.login")]
    assert await query(action__like="auth.logout%", sort="occurred_at,id") == [
        (2, "auth.logout"),
        (1, "auth.logout"),
        (2, "auth.logout_all"),
    ]
    assert await query(occurred_at__gte=T0 + timedelta(minutes=4)) == [
        (2, "auth.logout_all"),
        (1, "auth.logout"),
    ]
    assert await query(target_type="user", target_id="2") == [(2, "auth.logout")]


async def test_cursor_pages_walk_every_entry_once(identity_uow: IdentityUnitOfWorkFactory) -> None:
    await record(identity_uow, *(entry(n % 4, actor_id=n) for n in range(1, 12)))
    seen: list[int | None] = []
    cursor = None
    async with identity_uow(read_only=True) as tx:
        while True:
            page = await tx.audit.list(ListQuery(page=PageRequest(limit=3, cursor=cursor)))
            seen.extend(e.actor_id for e in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
    everyone = [e.actor_id for e in await everything(identity_uow)]
    assert seen == everyone and sorted(x for x in seen if x is not None) == list(range(1, 12))


@pytest.mark.parametrize("field", ["details", "user_agent", "nonexistent"])
async def test_private_and_unknown_fields_cannot_be_queried(
    identity_uow: IdentityUnitOfWorkFactory, field: str
) -> None:
    async with identity_uow(read_only=True) as tx:
        with pytest.raises(InvalidQueryError):
            await tx.audit.list(ListQuery(conditions=parse_filters({field: "x"})))
        with pytest.raises(InvalidQueryError):
            await tx.audit.list(ListQuery(sort=parse_sort(field)))
