"""The one place that decides what happens after an adapter answers: done (sent, failed,
skipped) or try again later. Adapters only classify a provider's answer into an outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from siyu.channels.contracts import Outcome, PermanentFailure, RetryableFailure, Sent, Skipped

MAX_ATTEMPTS = 6
# Seconds before attempt n + 1: quick at first (a network blip), then minutes (a provider's
# outage or flow control); six attempts span about an hour and a half.
BACKOFF_SECONDS = (15.0, 60.0, 300.0, 1200.0, 3600.0)


@dataclass(frozen=True)
class Done:
    status: str  # sent | failed | skipped
    reason: str = ""
    suppress: bool = False


@dataclass(frozen=True)
class RetryLater:
    delay_seconds: float
    reason: str


Decision = Done | RetryLater


def decide(outcome: Outcome, attempt: int) -> Decision:
    """``attempt`` counts from 1: the attempt that produced ``outcome``."""
    match outcome:
        case Sent():
            return Done("sent")
        case Skipped(reason=reason):
            return Done("skipped", reason)
        case PermanentFailure(code=code, reason=reason, suppress=suppress):
            return Done("failed", f"{code}: {reason}", suppress)
        case RetryableFailure(code=code, reason=reason, retry_after=retry_after):
            if attempt >= MAX_ATTEMPTS:
                return Done("failed", f"{code}: {reason} (gave up after {attempt} attempts)")
            backoff = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
            return RetryLater(max(backoff, retry_after or 0.0), f"{code}: {reason}")
        case _:
            assert_never(outcome)
