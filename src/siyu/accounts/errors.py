"""Error codes of the accounts domain."""

from __future__ import annotations

from siyu.core.errors import (
    AuthenticationError,
    ConflictError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationFailedError,
)


class InvalidCredentialsError(AuthenticationError):
    code = "invalid_credentials"


class SessionExpiredError(AuthenticationError):
    code = "session_expired"


class LoginRateLimitedError(RateLimitedError):
    code = "login_rate_limited"


class RoleTooLowError(PermissionDeniedError):
    code = "role_too_low"


class KeyScopeError(PermissionDeniedError):
    code = "key_scope_insufficient"


class CsrfError(PermissionDeniedError):
    code = "csrf_failed"


class EmailTakenError(ConflictError):
    code = "email_taken"


class SlugTakenError(ConflictError):
    code = "workspace_slug_taken"


class WeakPasswordError(ValidationFailedError):
    code = "weak_password"


class LastOwnerError(ConflictError):
    code = "last_owner"
