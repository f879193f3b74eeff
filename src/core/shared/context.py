"""Per-call facts about who is asking, passed from entrypoints to services."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a request came from: recorded in the audit trail and session lists."""

    ip: str | None = None
    user_agent: str | None = None

    def __post_init__(self) -> None:
        if self.user_agent is not None and len(self.user_agent) > 512:
            object.__setattr__(self, "user_agent", self.user_agent[:512])


NO_CLIENT = ClientInfo()
