"""Bearer tokens for mobile and API clients: short-lived access tokens and rotating
refresh tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.audit.model import AuditOutcome
from core.identity.auditing import IdentityAction, identity_entry
from core.identity.authentication import AuthenticationService
from core.identity.callers import NO_LIMIT_READ, CallerReader, LimitRead, TieredLimit, caller_user
from core.identity.errors import (
    InvalidAccessTokenError,
    InvalidCredentialsError,
    InvalidRefreshTokenError,
)
from core.identity.model import AccessTokenClaims, RefreshToken, User
from core.identity.ports import AccessTokenCodec, IdentityUnitOfWorkFactory
from core.identity.user_cache import CachedUsers
from core.shared.clock import Clock
from core.shared.context import NO_CLIENT, ClientInfo
from core.shared.hashing import fingerprint
from core.shared.ids import TokenGenerator

REFRESH_TOKEN_BYTES = 32  # 256 bits: the refresh token is a bearer secret
FAMILY_ID_BYTES = 16  # 128 bits: an unguessable public handle, not a secret
TOKEN_ID_BYTES = 16  # the access token's `jti`
TOKEN_TYPE = "Bearer"


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """How long bearer tokens live, given to the service as a value (from settings).

    A refresh token lives `refresh_ttl_seconds` from its own issue, so a client that
    refreshes at least that often stays signed in.
    """

    access_ttl_seconds: int = 15 * 60
    refresh_ttl_seconds: int = 30 * 24 * 60 * 60

    def __post_init__(self) -> None:
        if self.access_ttl_seconds <= 0 or self.refresh_ttl_seconds <= 0:
            raise ValueError("token lifetimes must be positive")
        if self.refresh_ttl_seconds <= self.access_ttl_seconds:
            raise ValueError("refresh tokens must outlive access tokens")


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a client gets at sign-in and at each refresh. The tokens go to the client
    only: never into a store or a log."""

    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lives
    user_id: int
    token_type: str = TOKEN_TYPE

    def __repr__(self) -> str:  # never print the tokens
        return f"TokenPair(user_id={self.user_id}, expires_in={self.expires_in})"


@dataclass(frozen=True, slots=True)
class BearerAuthenticated:
    """The user behind a valid access token, and what the token says."""

    user: User
    claims: AccessTokenClaims
    # The general rate limit, when `authenticate` was asked to count it (see `callers`).
    limit: LimitRead = NO_LIMIT_READ


class TokenService:
    """Rules for bearer tokens (mobile and API clients).

    - Tokens are issued for the same credentials as a browser login, after the same
      check: unknown email and wrong password fail alike (`InvalidCredentialsError`),
      audited as a failed `auth.token_issued`.
    - A sign-in starts a refresh-token family. The access token is a signed, short-lived
      token (`access_ttl_seconds`) that names the user and the family; the refresh token
      is 256 random bits, stored only as its fingerprint, valid `refresh_ttl_seconds`.
    - Refreshing uses the presented refresh token up and returns a new pair of the same
      family; the old refresh token is dead. Presenting a used (or revoked) refresh token
      again is reuse: the whole family is revoked, its newest token included, and the
      answer is `InvalidRefreshTokenError`, the same as for unknown or expired tokens.
      Two concurrent refreshes with one token: one wins, the other is reuse.
    - Revoking a refresh token revokes its family; unknown tokens are accepted silently
      (RFC 7009), so the answer tells nothing. Signing out with an access token
      (`sign_out`) revokes the family it names.
    - An access token is accepted while it verifies and is current, its user is active,
      and it was issued after the user's `tokens_valid_after` (logout-all, password
      change and reset, and deletion move it: see `revocation.end_all_tokens`). An access
      token of a revoked family stays valid until it expires (at most
      `access_ttl_seconds`); ending every token of the user is immediate.
    - Issuing and refreshing lock the user, as ending every token does, so a sign-in
      racing a password change either happens first (and is ended) or after (and needs
      the new password): never in between.
    - Issues, refreshes, reuse and revocations are audited; no entry holds a token.
    """

    def __init__(
        self,
        uow: IdentityUnitOfWorkFactory,
        auth: AuthenticationService,
        codec: AccessTokenCodec,
        tokens: TokenGenerator,
        clock: Clock,
        policy: TokenPolicy,
        users: CachedUsers,
        callers: CallerReader,
    ) -> None:
        self._uow = uow
        self._users = users  # the per-request user read, cache-aside
        self._callers = callers
        self._auth = auth
        self._codec = codec
        self._tokens = tokens
        self._clock = clock
        self._policy = policy

    async def issue_pair(
        self, email: str, password: str, *, client: ClientInfo = NO_CLIENT
    ) -> TokenPair:
        """Sign in with email and password: a new family, a new pair."""
        user = await self._auth.verify_credentials(
            email, password, client=client, action=IdentityAction.TOKEN_ISSUED
        )
        assert user.id is not None
        family_id = self._tokens.token(FAMILY_ID_BYTES)
        refresh_token = self._tokens.token(REFRESH_TOKEN_BYTES)
        async with self._uow() as tx:
            current = await tx.users.lock(user.id)
            if (
                current is None
                or not current.is_active
                or current.password_hash != user.password_hash
            ):
                # Deleted, deactivated, or the password changed, since the credentials
                # were checked.
                raise InvalidCredentialsError()
            now = self._issue_time(current)
            await tx.refresh_tokens.add(
                self._refresh_record(refresh_token, user.id, family_id, now)
            )
            await tx.audit.record(
                identity_entry(
                    IdentityAction.TOKEN_ISSUED,
                    now=now,
                    client=client,
                    actor_id=user.id,
                    user_id=user.id,
                    family=family_id,
                )
            )
            await tx.commit()
        return self._pair(user.id, family_id, refresh_token, now)

    async def refresh(self, refresh_token: str, *, client: ClientInfo = NO_CLIENT) -> TokenPair:
        """Trade a usable refresh token for a new pair; reuse ends the whole family."""
        token_hash = fingerprint(refresh_token)
        successor = self._tokens.token(REFRESH_TOKEN_BYTES)
        async with self._uow() as tx:
            found = await tx.refresh_tokens.get(token_hash)
            if found is None:
                raise InvalidRefreshTokenError()
            user = await tx.users.lock(found.user_id)
            if user is not None and not user.is_active:
                user = None  # deactivated: its tokens were revoked, and none is minted
            now = self._issue_time(user)
            used = await tx.refresh_tokens.use(token_hash, now) if user is not None else None
            if used is None:
                # Read again under the lock: a concurrent refresh may have used it.
                current = await tx.refresh_tokens.get(token_hash)
                if current is not None and (
                    current.used_at is not None or current.revoked_at is not None
                ):
                    ended = await tx.refresh_tokens.revoke_family(current.family_id, now)
                    if current.used_at is None and ended == 0:
                        # Revoked with its whole family already (logout, logout-all):
                        # a client that missed the news, not a replay.
                        raise InvalidRefreshTokenError()
                    await tx.audit.record(
                        identity_entry(
                            IdentityAction.TOKEN_REUSED,
                            now=now,
                            client=client,
                            user_id=current.user_id,
                            outcome=AuditOutcome.FAILURE,
                            reason="used" if current.used_at is not None else "revoked",
                            family=current.family_id,
                            ended=ended,
                        )
                    )
                    await tx.commit()
                raise InvalidRefreshTokenError()
            await tx.refresh_tokens.add(
                self._refresh_record(successor, used.user_id, used.family_id, now)
            )
            await tx.audit.record(
                identity_entry(
                    IdentityAction.TOKEN_REFRESHED,
                    now=now,
                    client=client,
                    actor_id=used.user_id,
                    user_id=used.user_id,
                    family=used.family_id,
                )
            )
            await tx.commit()
        return self._pair(used.user_id, used.family_id, successor, now)

    async def revoke(self, refresh_token: str, *, client: ClientInfo = NO_CLIENT) -> None:
        """End the refresh token's family. Unknown or already ended: nothing happens."""
        async with self._uow(read_only=True) as tx:
            found = await tx.refresh_tokens.get(fingerprint(refresh_token))
        if found is not None:
            await self.sign_out(found.user_id, found.family_id, client=client)

    async def sign_out(
        self, user_id: int, family_id: str, *, client: ClientInfo = NO_CLIENT
    ) -> int:
        """End one sign-in: revoke every refresh token of `family_id` (the `family_id` of
        the caller's access token, which itself lives until it expires). Returns how many
        tokens were revoked; 0 when the family was over already."""
        async with self._uow() as tx:
            # Locked like a refresh, so a successor minted concurrently is revoked too.
            await tx.users.lock(user_id)
            now = self._clock.now()
            ended = await tx.refresh_tokens.revoke_family(family_id, now)
            if ended == 0:
                return 0
            await tx.audit.record(
                identity_entry(
                    IdentityAction.TOKEN_REVOKED,
                    now=now,
                    client=client,
                    actor_id=user_id,
                    user_id=user_id,
                    family=family_id,
                    ended=ended,
                )
            )
            await tx.commit()
        return ended

    async def authenticate(
        self, access_token: str, limit: TieredLimit | None = None
    ) -> BearerAuthenticated:
        """The active user behind an access token, or `InvalidAccessTokenError`.

        With `limit`, the caller's general rate limit is counted in the same read where
        the stores allow it (`BearerAuthenticated.limit`)."""
        claims = self._codec.decode(access_token, self._clock.now())
        # Cached, but never stale after "end every token": the commit that moves
        # `tokens_valid_after` forgets the user (`user_invalidation`).
        read = await self._callers.read_user(claims.subject, limit)
        user = await caller_user(self._users, read)
        if user is None or not user.accepts_token_issued_at(claims.issued_at):
            raise InvalidAccessTokenError()
        return BearerAuthenticated(user=user, claims=claims, limit=LimitRead.of(read))

    def _issue_time(self, user: User | None) -> datetime:
        # Never before the user's cut-off: a clock a little behind the one that ended
        # every token (another process) must not mint tokens that are dead on arrival.
        now = self._clock.now()
        if user is not None and user.tokens_valid_after is not None:
            return max(now, user.tokens_valid_after)
        return now

    def _refresh_record(
        self, token: str, user_id: int, family_id: str, now: datetime
    ) -> RefreshToken:
        return RefreshToken(
            token_hash=fingerprint(token),
            user_id=user_id,
            family_id=family_id,
            created_at=now,
            expires_at=now + timedelta(seconds=self._policy.refresh_ttl_seconds),
        )

    def _pair(self, user_id: int, family_id: str, refresh_token: str, now: datetime) -> TokenPair:
        ttl = self._policy.access_ttl_seconds
        claims = AccessTokenClaims(
            subject=user_id,
            token_id=self._tokens.token(TOKEN_ID_BYTES),
            family_id=family_id,
            issued_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
        return TokenPair(
            access_token=self._codec.issue(claims),
            refresh_token=refresh_token,
            expires_in=ttl,
            user_id=user_id,
        )
