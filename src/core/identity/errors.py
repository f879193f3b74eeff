"""Identity errors. Each leaf has a stable `code` that the HTTP layer returns."""

from __future__ import annotations

from core.shared.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)


class EmailTakenError(ConflictError):
    code = "email_taken"
    default_detail = "An account with this email already exists."


class UsernameTakenError(ConflictError):
    code = "username_taken"
    default_detail = "This username is taken."


class UserNotFoundError(NotFoundError):
    code = "user_not_found"
    default_detail = "The user does not exist."


class SessionNotFoundError(NotFoundError):
    code = "session_not_found"
    default_detail = "The session does not exist."


class InvalidCredentialsError(AuthenticationError):
    """Unknown email and wrong password give this same error, on purpose."""

    code = "invalid_credentials"
    default_detail = "The email or password is wrong."


class NotAuthenticatedError(AuthenticationError):
    code = "not_authenticated"
    default_detail = "Authentication is required."


class WrongPasswordError(PermissionDeniedError):
    """The current password given to confirm a sensitive change is wrong.

    The caller is signed in, so this refuses the change, not the sign-in: a permission
    refusal (an authentication failure would tell clients their session had ended).
    """

    code = "wrong_password"
    default_detail = "The password is wrong."


class InvalidEmailError(RuleViolationError):
    code = "invalid_email"
    default_detail = "This is not a valid email address."


class InvalidUsernameError(RuleViolationError):
    code = "invalid_username"
    default_detail = (
        "A username has 3 to 32 characters: letters, digits, '_', '-' or '.', "
        "starting with a letter or digit."
    )


class WeakPasswordError(RuleViolationError):
    code = "weak_password"
    default_detail = "The password is too weak."


class InvalidTokenError(RuleViolationError):
    """A verification or reset token that is unknown, used, expired or for another
    purpose: one answer for all, so the answer tells nothing about which."""

    code = "invalid_token"
    default_detail = "This link is invalid or has expired; ask for a new one."

    def __init__(self, detail: str | None = None, *, field: str | None = "token") -> None:
        super().__init__(detail, field=field)


class InvalidAccessTokenError(AuthenticationError):
    """A bearer access token that is malformed, forged, expired, for another audience or
    issuer, not an access token, or ended by logout-all or a password change: one answer
    for all. The code is RFC 6750's `invalid_token`."""

    code = "invalid_token"
    default_detail = "The access token is invalid or has expired."


class InvalidRefreshTokenError(AuthenticationError):
    """A refresh token that is unknown, expired, used or revoked: one answer for all
    (a reused one also ends its whole family, see `TokenService`)."""

    code = "invalid_refresh_token"
    default_detail = "The refresh token is invalid or has expired; sign in again."


class SelfDeactivationError(RuleViolationError):
    """An operator may not deactivate the account they are acting from (they would lock
    themselves out of the tools that reactivate it)."""

    code = "self_deactivation"
    default_detail = "You cannot deactivate your own account."
