"""Callback errors."""

from __future__ import annotations

from siyu.core.errors import PermissionDeniedError


class CallbackRejectedError(PermissionDeniedError):
    """Bad signature, wrong app, or undecryptable body: 403 and nothing stored."""

    code = "callback_rejected"
