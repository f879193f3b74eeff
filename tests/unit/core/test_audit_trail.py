"""`AuditTrail`: entries for what no other service audits (operators' actions), each in a
transaction of its own, through the same secret guard as every entry."""

from __future__ import annotations

import pytest

from core.audit.errors import UnsafeAuditEntryError
from core.audit.model import AuditOutcome
from core.audit.service import AuditTrail
from core.shared.context import ClientInfo
from core.shared.query import ListQuery, PageRequest, parse_filters
from tests.unit.core.identity_world import World


@pytest.fixture
def world() -> World:
    return World()


async def test_an_entry_is_written_with_actor_target_client_and_details(world: World) -> None:
    trail = world.services.get(AuditTrail)
    await trail.record(
        "admin.job_retried",
        actor_id=3,
        target_type="job",
        target_id=41,
        client=ClientInfo(ip="10.0.0.5", user_agent="probe"),
        attempts=2,
    )
    (entry,) = await world.audit(action="admin.job_retried")
    assert entry.actor_id == 3 and entry.target_type == "job" and entry.target_id == "41"
    assert entry.ip == "10.0.0.5" and entry.user_agent == "probe"
    assert entry.outcome is AuditOutcome.SUCCESS and entry.details == {"attempts": 2}
    listed = await trail.entries(
        ListQuery(conditions=parse_filters({"actor_id": 3}), page=PageRequest(limit=10))
    )
    assert [e.action for e in listed.items] == ["admin.job_retried"]


async def test_a_detail_that_looks_like_a_secret_is_refused_and_nothing_written(
    world: World,
) -> None:
    trail = world.services.get(AuditTrail)
    with pytest.raises(UnsafeAuditEntryError):
        await trail.record("admin.note_added", actor_id=1, note="Zq8vT3xKm4Wd" * 4)
    with pytest.raises(UnsafeAuditEntryError):
        await trail.record("admin.session_revoked", actor_id=1, session_id=5)
    assert await world.audit(actor_id=1) == []
