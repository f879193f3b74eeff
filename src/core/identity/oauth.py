"""Signing in with an OAuth provider (GitHub, Google): linking, new accounts, sessions."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from core.audit.model import AuditEntry, AuditOutcome
from core.identity.accounts import queue_welcome_mail
from core.identity.auditing import IdentityAction, identity_entry, record_alone
from core.identity.authentication import AuthenticationService, LoginResult
from core.identity.errors import (
    EmailTakenError,
    InvalidEmailError,
    InvalidUsernameError,
    UsernameTakenError,
)
from core.identity.model import Email, User, Username
from core.identity.oauth_errors import (
    OAuthAccountExistsError,
    OAuthEmailUnverifiedError,
    OAuthFailedError,
    OAuthIdentityTakenError,
    OAuthProviderNotFoundError,
    OAuthStateError,
)
from core.identity.oauth_model import OAuthIdentity, OAuthStart, ProviderIdentity
from core.identity.oauth_ports import OAuthProvider
from core.identity.ports import IdentityUnitOfWork, IdentityUnitOfWorkFactory, PasswordHasher
from core.shared.clock import Clock
from core.shared.context import NO_CLIENT, ClientInfo
from core.shared.errors import ConflictError
from core.shared.hashing import constant_time_equals
from core.shared.ids import TokenGenerator

STATE_BYTES = 32  # 256 bits: `state` is what ties the callback to this browser
VERIFIER_BYTES = 48  # 64 characters: RFC 7636 wants 43 to 128
UNUSABLE_PASSWORD_BYTES = 32
MAX_CODE_LENGTH = 2048
# A concurrent first sign-in of the same person can win a race for the link, the email
# or the username; looking again resolves it (the second look finds the winner's rows).
RESOLVE_ATTEMPTS = 3
USERNAME_ATTEMPTS = 6
USERNAME_SUFFIX_LENGTH = 6
_USERNAME_JUNK = re.compile(r"[^A-Za-z0-9_.-]+")
# Said only once the provider has proved who the person is.
DEACTIVATED_DETAIL = "This account is deactivated; contact support."


def pkce_challenge(code_verifier: str) -> str:
    """The S256 code challenge of a verifier (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OAuthProviders:
    """The configured providers by name (built once from settings)."""

    def __init__(self, providers: Iterable[OAuthProvider] = ()) -> None:
        self._providers = {provider.name: provider for provider in providers}

    def get(self, name: str) -> OAuthProvider:
        """The provider, or `OAuthProviderNotFoundError` for unknown and unconfigured
        names alike."""
        provider = self._providers.get(name)
        if provider is None:
            raise OAuthProviderNotFoundError()
        return provider

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._providers))


@dataclass(frozen=True, slots=True)
class OAuthLogin:
    """A completed sign-in: the session (as a password login gives it), and whether
    this sign-in created the account or linked the provider account to it."""

    login: LoginResult
    created: bool = False
    linked: bool = False


class _LostRace(Exception):
    """Another sign-in wrote the link, email or username first: resolve again."""


class OAuthService:
    """Rules for signing in with an OAuth provider.

    - The flow is the authorization code flow with PKCE (S256) and `state`: `begin`
      makes a fresh 256-bit `state` and verifier per attempt; `complete` refuses a
      callback whose `state` is missing or differs from the one this browser started
      with (constant-time comparison) before the provider is asked anything.
    - Provider accounts are recognised by `(provider, subject)`, never by email. A linked
      provider account signs in to its user; one whose user was deleted signs in to
      nothing (`OAuthFailedError`).
    - An unlinked provider account needs an email the provider says is verified.
      Without one it neither reaches an existing account nor creates one
      (`OAuthEmailUnverifiedError`, the same answer whether such an account exists or
      not): otherwise anyone could claim an address at a provider that does not check
      it, and keep a way into the account after its owner reclaimed it.
    - With a verified email that belongs to an account whose own email is verified, the
      provider account is linked to it. An account whose email was never verified is
      not linked (`OAuthAccountExistsError`): it may have been registered by someone
      else in the owner's name to be taken over later (pre-account hijacking); its
      owner signs in with the password and verifies the address first. A deleted
      account keeps its email, so its address cannot sign up again (`EmailTakenError`).
    - Otherwise a new account is made: the verified email (marked verified), a username
      derived from the provider's handle and made unique, and the hash of a random
      password nobody knows (the same hashing work as any account, so password logins
      to it fail like any wrong password; a password reset sets a real one). It gets
      the welcome mail, like a registration.
    - A successful sign-in starts a browser session exactly like a password login
      (`AuthenticationService.start_session_for`: a new session id, the previous one
      ended, audited with `method=oauth` and the provider).
    - Links and new accounts are audited in their own transaction
      (`account.oauth_linked`, `account.registered`); refused sign-ins (state, provider
      refusal, email rules) are audited as failed `auth.login`s.
    """

    def __init__(
        self,
        uow: IdentityUnitOfWorkFactory,
        auth: AuthenticationService,
        providers: OAuthProviders,
        hasher: PasswordHasher,
        tokens: TokenGenerator,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._auth = auth
        self._providers = providers
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock

    @property
    def providers(self) -> OAuthProviders:
        return self._providers

    def begin(self, provider: str) -> OAuthStart:
        """Where to send the browser, and the `state` and verifier to keep until the
        callback. `OAuthProviderNotFoundError` for a provider that is not configured."""
        chosen = self._providers.get(provider)
        state = self._tokens.token(STATE_BYTES)
        verifier = self._tokens.token(VERIFIER_BYTES)
        url = chosen.authorization_url(state=state, code_challenge=pkce_challenge(verifier))
        return OAuthStart(provider=chosen.name, url=url, state=state, code_verifier=verifier)

    async def complete(
        self,
        provider: str,
        *,
        code: str | None,
        state: str | None,
        expected_state: str | None,
        code_verifier: str | None,
        client: ClientInfo = NO_CLIENT,
        previous_token: str | None = None,
    ) -> OAuthLogin:
        """Finish a sign-in from the provider's redirect: check `state` against the one
        kept since `begin`, trade the code (with the verifier), find or make the account
        and start its session (ending `previous_token`'s)."""
        chosen = self._providers.get(provider)
        if not (
            state
            and expected_state
            and code_verifier
            and constant_time_equals(state, expected_state)
        ):
            await self._refused(chosen.name, "state_mismatch", client)
            raise OAuthStateError()
        if not code or len(code) > MAX_CODE_LENGTH:
            await self._refused(chosen.name, "missing_code", client)
            raise OAuthFailedError()
        try:
            identity = await chosen.exchange(code=code, code_verifier=code_verifier)
        except OAuthFailedError:
            await self._refused(chosen.name, "provider_refused", client)
            raise
        if identity.provider != chosen.name:  # an adapter bug, never the person's fault
            raise OAuthFailedError()
        try:
            user, created, linked = await self._resolve(identity, client)
        except (OAuthFailedError, ConflictError) as exc:
            await self._refused(chosen.name, exc.code, client)
            raise
        login = await self._auth.start_session_for(
            user,
            client=client,
            previous_token=previous_token,
            method="oauth",
            provider=chosen.name,
        )
        return OAuthLogin(login=login, created=created, linked=linked)

    # --- finding or making the account -----------------------------------------------

    async def _resolve(
        self, identity: ProviderIdentity, client: ClientInfo
    ) -> tuple[User, bool, bool]:
        """(user, created, linked) for a provider identity; see the class rules."""
        for attempt in range(RESOLVE_ATTEMPTS):
            try:
                return await self._resolve_once(identity, client)
            except _LostRace as lost:
                if attempt == RESOLVE_ATTEMPTS - 1:
                    cause = lost.__cause__
                    if isinstance(cause, ConflictError):
                        raise cause from None
                    raise ConflictError() from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _resolve_once(
        self, identity: ProviderIdentity, client: ClientInfo
    ) -> tuple[User, bool, bool]:
        username: Username | None = None
        async with self._uow(read_only=True) as tx:
            link = await tx.oauth_identities.get(identity.provider, identity.subject)
            if link is not None:
                user = await tx.users.get(link.user_id)
                if user is None:
                    raise OAuthFailedError("The account linked to this sign-in no longer exists.")
                if not user.is_active:
                    raise OAuthFailedError(DEACTIVATED_DETAIL)
                return user, False, False
            email = _verified_email(identity)
            if email is None:
                raise OAuthEmailUnverifiedError()
            existing = await tx.users.get_by_email(email, include_deleted=True)
            if existing is not None:
                if existing.is_deleted:
                    raise EmailTakenError()
                if not existing.is_active:
                    raise OAuthFailedError(DEACTIVATED_DETAIL)
                if not existing.email_verified:
                    raise OAuthAccountExistsError()
            else:
                username = await self._free_username(tx, identity, email)
        if existing is not None:
            return await self._link(existing, identity, client), False, True
        assert username is not None
        return await self._create(identity, email, username, client), True, True

    async def _link(self, user: User, identity: ProviderIdentity, client: ClientInfo) -> User:
        assert user.id is not None
        now = self._clock.now()
        async with self._uow() as tx:
            current = await tx.users.lock(user.id)
            if (
                current is None
                or not current.is_active
                or not current.email_verified
                or current.email != user.email
            ):
                raise _LostRace()  # changed since we looked: decide again
            try:
                link = await tx.oauth_identities.add(
                    OAuthIdentity(
                        user_id=user.id,
                        provider=identity.provider,
                        subject=identity.subject,
                        email=str(user.email),
                        created_at=now,
                    )
                )
                await tx.audit.record(_linked_entry(current, link, client))
                await tx.commit()
            except OAuthIdentityTakenError as exc:
                raise _LostRace() from exc
        return current

    async def _create(
        self, identity: ProviderIdentity, email: Email, username: Username, client: ClientInfo
    ) -> User:
        # Hashed before the transaction opens: a write transaction must not wait on it.
        password_hash = await self._hasher.hash(self._tokens.token(UNUSABLE_PASSWORD_BYTES))
        now = self._clock.now()
        async with self._uow() as tx:
            try:
                user = await tx.users.add(
                    User(
                        email=email,
                        username=username,
                        password_hash=password_hash,
                        email_verified=True,
                    )
                )
                assert user.id is not None
                link = await tx.oauth_identities.add(
                    OAuthIdentity(
                        user_id=user.id,
                        provider=identity.provider,
                        subject=identity.subject,
                        email=str(email),
                        created_at=now,
                    )
                )
                await tx.audit.record(
                    identity_entry(
                        IdentityAction.REGISTERED,
                        now=now,
                        client=client,
                        actor_id=user.id,
                        user_id=user.id,
                        method="oauth",
                        provider=identity.provider,
                    )
                )
                await tx.audit.record(_linked_entry(user, link, client))
                await queue_welcome_mail(tx.jobs, user)
                await tx.commit()
            except (OAuthIdentityTakenError, EmailTakenError, UsernameTakenError) as exc:
                raise _LostRace() from exc
        return user

    async def _free_username(
        self, tx: IdentityUnitOfWork, identity: ProviderIdentity, email: Email
    ) -> Username:
        """The provider's handle as a valid username, with a random suffix while taken
        (deleted accounts keep theirs). Unique constraints still decide races."""
        base = _username_base(identity, email)
        candidate = base
        for _ in range(USERNAME_ATTEMPTS):
            if await tx.users.get_by_username(candidate, include_deleted=True) is None:
                return candidate
            # Six characters of a fresh token (the generator hands out 16 bytes at least).
            suffix = self._tokens.token(16)[:USERNAME_SUFFIX_LENGTH]
            # Still a valid username: the base starts with a letter or digit and the
            # suffix is URL-safe base64 (letters, digits, '-', '_').
            candidate = Username(f"{base.value[: 31 - len(suffix)]}-{suffix}")
        raise _LostRace()

    async def _refused(self, provider: str, reason: str, client: ClientInfo) -> None:
        await record_alone(
            self._uow,
            identity_entry(
                IdentityAction.LOGIN,
                now=self._clock.now(),
                client=client,
                outcome=AuditOutcome.FAILURE,
                reason=reason,
                method="oauth",
                provider=provider,
            ),
        )


def _linked_entry(user: User, link: OAuthIdentity, client: ClientInfo) -> AuditEntry:
    return identity_entry(
        IdentityAction.OAUTH_LINKED,
        now=link.created_at,
        client=client,
        actor_id=user.id,
        user_id=user.id,
        provider=link.provider,
        link_id=link.id,
    )


def _verified_email(identity: ProviderIdentity) -> Email | None:
    """The email when the provider vouches for it (and it is valid here), else None."""
    if not identity.email_verified or not identity.email:
        return None
    try:
        return Email(identity.email)
    except InvalidEmailError:
        return None


def _username_base(identity: ProviderIdentity, email: Email) -> Username:
    """A valid username from the handle, the name or the email's local part."""
    for source in (identity.login, identity.display_name, email.value.split("@", 1)[0]):
        if not source:
            continue
        cleaned = _USERNAME_JUNK.sub("-", source.strip())
        cleaned = cleaned.lstrip("_.-")[:32]
        if len(cleaned) < 3 and cleaned:
            cleaned = f"{cleaned}-user"
        try:
            return Username(cleaned)
        except InvalidUsernameError:
            continue  # nothing usable in this source: try the next one
    return Username("user")
