"""Browser sessions kept in process memory."""

from __future__ import annotations

import heapq
import itertools
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from core.identity.model import BrowserSession
from core.identity.ports import SessionStore
from core.shared.clock import Clock


@dataclass(slots=True)
class _Entry:
    session: BrowserSession
    deadline: datetime  # the entry is gone from this instant on


class InMemorySessionStore(SessionStore):
    """A `SessionStore` in a dict, for tests and single-process deployments.

    Contract (from `SessionStore`), with the clock standing in for Redis' own time:
    - `create` stores a copy of the session under its `token_hash`, assigns public ids
      1, 2, 3, ... (never reused) and makes the entry vanish `ttl_seconds(now)` seconds
      after `now`; `touch` pushes that deadline to `ttl_seconds` (at least 1) after the
      clock's now.
    - `get` and `list_for_user` hand out copies, so callers can't change stored state.
    - `delete_for_user` removes a session only for its owner; `delete_all_for_user`
      removes all of a user's live sessions but `keep_token_hash` and counts them.
    - `list_for_user` is oldest first (`created_at`, then `id`).
    - `ping` never fails.
    Every call runs to completion without awaiting, under a lock, so calls are atomic
    with respect to other tasks and threads. Expired entries are purged on every call
    (a heap ordered by deadline makes that cost proportional to what expired), so memory
    does not grow with sessions nobody comes back for. Contents die with the process.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._entries: dict[str, _Entry] = {}
        self._by_id: dict[int, str] = {}
        self._by_user: dict[int, set[str]] = {}
        # (deadline, token_hash) pairs; touch pushes a new pair and leaves the old one,
        # which the purge recognises as stale because the entry's deadline moved on.
        self._deadlines: list[tuple[datetime, str]] = []

    async def create(self, session: BrowserSession, now: datetime) -> BrowserSession:
        with self._lock:
            self._purge()
            if session.token_hash in self._entries:
                self._remove(session.token_hash)
            stored = _copy(session, id=next(self._ids))
            deadline = now + timedelta(seconds=session.ttl_seconds(now))
            self._entries[stored.token_hash] = _Entry(stored, deadline)
            assert stored.id is not None
            self._by_id[stored.id] = stored.token_hash
            self._by_user.setdefault(stored.user_id, set()).add(stored.token_hash)
            heapq.heappush(self._deadlines, (deadline, stored.token_hash))
            return _copy(stored)

    async def get(self, token_hash: str) -> BrowserSession | None:
        with self._lock:
            self._purge()
            entry = self._entries.get(token_hash)
            return _copy(entry.session) if entry is not None else None

    async def touch(self, token_hash: str, last_seen_at: datetime, ttl_seconds: int) -> None:
        with self._lock:
            self._purge()
            entry = self._entries.get(token_hash)
            if entry is None:
                return
            entry.session.last_seen_at = last_seen_at
            entry.deadline = self._clock.now() + timedelta(seconds=max(1, ttl_seconds))
            heapq.heappush(self._deadlines, (entry.deadline, token_hash))

    async def delete(self, token_hash: str) -> bool:
        with self._lock:
            self._purge()
            return self._remove(token_hash)

    async def delete_for_user(self, user_id: int, session_id: int) -> bool:
        with self._lock:
            self._purge()
            token_hash = self._by_id.get(session_id)
            if token_hash is None or self._entries[token_hash].session.user_id != user_id:
                return False
            return self._remove(token_hash)

    async def delete_all_for_user(self, user_id: int, *, keep_token_hash: str | None = None) -> int:
        with self._lock:
            self._purge()
            doomed = [h for h in self._by_user.get(user_id, ()) if h != keep_token_hash]
            for token_hash in doomed:
                self._remove(token_hash)
            return len(doomed)

    async def list_for_user(self, user_id: int) -> list[BrowserSession]:
        with self._lock:
            self._purge()
            sessions = [self._entries[h].session for h in self._by_user.get(user_id, ())]
            sessions.sort(key=lambda s: (s.created_at, s.id or 0))
            return [_copy(s) for s in sessions]

    async def ping(self) -> None:
        return None

    def _remove(self, token_hash: str) -> bool:
        entry = self._entries.pop(token_hash, None)
        if entry is None:
            return False
        session = entry.session
        assert session.id is not None
        del self._by_id[session.id]
        user_hashes = self._by_user[session.user_id]
        user_hashes.discard(token_hash)
        if not user_hashes:
            del self._by_user[session.user_id]
        return True

    def _purge(self) -> None:
        now = self._clock.now()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, token_hash = heapq.heappop(self._deadlines)
            entry = self._entries.get(token_hash)
            if entry is not None and entry.deadline <= now:
                self._remove(token_hash)


def _copy(session: BrowserSession, **changes: object) -> BrowserSession:
    changes.setdefault("extra", dict(session.extra))
    return replace(session, **changes)  # type: ignore[arg-type]
