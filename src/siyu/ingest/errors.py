"""Error codes of the ingest domain."""

from __future__ import annotations

from siyu.core.errors import SiyuError


class InvalidEventError(SiyuError):
    """The body or one event does not follow the Segment spec; the message names the problem."""

    code = "invalid_event"
    status = 400


class PayloadTooLargeError(SiyuError):
    code = "payload_too_large"
    status = 413
