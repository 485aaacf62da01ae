"""Base errors. Every error crossing an edge carries a stable code, an HTTP status and details."""

from __future__ import annotations

from typing import Any


class SiyuError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class NotFoundError(SiyuError):
    code = "not_found"
    status = 404


class ConflictError(SiyuError):
    code = "conflict"
    status = 409


class ValidationFailedError(SiyuError):
    code = "validation_failed"
    status = 422


class AuthenticationError(SiyuError):
    code = "unauthenticated"
    status = 401


class PermissionDeniedError(SiyuError):
    code = "permission_denied"
    status = 403


class RateLimitedError(SiyuError):
    code = "rate_limited"
    status = 429


class TenancyError(SiyuError):
    """A workspace-scoped query ran without a workspace: a programming error, never user input."""

    code = "tenancy_violation"
    status = 500
