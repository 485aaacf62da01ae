"""Error codes of the jobs domain."""

from __future__ import annotations

from siyu.core.errors import ValidationFailedError


class UnknownTaskError(ValidationFailedError):
    code = "unknown_task"


class InvalidCronError(ValidationFailedError):
    code = "invalid_cron"


class RetryLater(Exception):  # noqa: N818 - a signal, not a failure
    """Raised by a task to be run again after ``delay_seconds`` without counting as an error."""

    def __init__(self, delay_seconds: float) -> None:
        super().__init__(f"retry in {delay_seconds}s")
        self.delay_seconds = delay_seconds
