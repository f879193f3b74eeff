"""Identity use cases; each capability lives in its own module."""

from core.identity.accounts import AccountService
from core.identity.authentication import Authenticated, AuthenticationService, LoginResult

__all__ = ["AccountService", "Authenticated", "AuthenticationService", "LoginResult"]
