"""Error codes of the identity domain."""

from __future__ import annotations

from siyu.core.errors import ValidationFailedError


class InvalidIdentifierError(ValidationFailedError):
    code = "invalid_identifier"
