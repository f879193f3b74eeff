"""OAuth sign-in errors. Each leaf has a stable `code` that the HTTP layer returns.

Leaves that derive from `DomainError` directly (state, refusal, denial) are failures of
the sign-in request itself; the HTTP layer answers them 400.
"""

from __future__ import annotations

from core.shared.errors import ConflictError, DomainError, NotFoundError


class OAuthProviderNotFoundError(NotFoundError):
    """A provider name that is unknown or not configured: one answer for both."""

    code = "oauth_provider_not_found"
    default_detail = "This sign-in provider is not available."


class OAuthStateError(DomainError):
    """The callback's `state` is missing, does not match the one this browser started
    with, or the sign-in started too long ago (or elsewhere)."""

    code = "oauth_state_invalid"
    default_detail = "This sign-in expired or was not started here; please start again."


class OAuthFailedError(DomainError):
    """The provider refused the code (used, expired, wrong verifier or redirect URI) or
    answered something unusable."""

    code = "oauth_failed"
    default_detail = "The sign-in provider did not confirm this sign-in; please try again."


class OAuthDeniedError(DomainError):
    """The provider redirected back with an error (the person declined, most often)."""

    code = "oauth_denied"
    default_detail = "The sign-in was cancelled at the provider."


class OAuthEmailUnverifiedError(ConflictError):
    """The provider shared no email address it vouches for. Such a sign-in neither
    reaches an existing account nor creates one (see `OAuthService`)."""

    code = "oauth_email_unverified"
    default_detail = (
        "The provider did not confirm an email address for this account; verify your "
        "email address there, or sign in with your password."
    )


class OAuthAccountExistsError(ConflictError):
    """An account with the provider's (verified) email exists, but its own email was
    never verified here, so it is not linked automatically."""

    code = "account_exists"
    default_detail = (
        "An account with this email address exists; sign in with your password and verify "
        "your email address first, then this provider can be used too."
    )


class OAuthIdentityTakenError(ConflictError):
    """The provider account is linked already (a store-level uniqueness conflict)."""

    code = "oauth_identity_taken"
    default_detail = "This provider account is linked to an account already."
