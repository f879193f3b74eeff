"""Identity use cases; each capability lives in its own module."""

from core.identity.accounts import AccountService
from core.identity.authentication import Authenticated, AuthenticationService, LoginResult
from core.identity.oauth import OAuthLogin, OAuthProviders, OAuthService
from core.identity.one_time_tokens import TokenMaintenanceService
from core.identity.recovery import PasswordResetService
from core.identity.tokens import BearerAuthenticated, TokenPair, TokenPolicy, TokenService
from core.identity.verification import EmailVerificationService

__all__ = [
    "AccountService",
    "Authenticated",
    "AuthenticationService",
    "BearerAuthenticated",
    "EmailVerificationService",
    "LoginResult",
    "OAuthLogin",
    "OAuthProviders",
    "OAuthService",
    "PasswordResetService",
    "TokenMaintenanceService",
    "TokenPair",
    "TokenPolicy",
    "TokenService",
]
