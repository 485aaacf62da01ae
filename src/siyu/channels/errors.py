"""Errors of the channels domain, each with a stable code."""

from __future__ import annotations

from siyu.core.errors import NotFoundError, ValidationFailedError


class UnknownProviderError(ValidationFailedError):
    code = "unknown_provider"


class AccountNotFoundError(NotFoundError):
    code = "channel_account_not_found"


class NoAccountError(ValidationFailedError):
    code = "no_channel_account"


class TemplateNotFoundError(NotFoundError):
    code = "template_not_found"


class TemplateInvalidError(ValidationFailedError):
    code = "template_invalid"
