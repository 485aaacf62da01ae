"""When dispatch and the sandbox's receipts run: jobs keyed by workspace and second, so a burst
of sends asks for one dispatch, not thousands; a sweep every minute catches anything a race let
slip."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from siyu.jobs.contracts import JobSpec
from siyu.jobs.queue import enqueue
from siyu.storage.scoping import require_workspace

DISPATCH_TASK = "channels.dispatch"
SANDBOX_TASK = "channels.sandbox_receipts"
QUEUE = "sends"


def _at_second(at: datetime) -> tuple[datetime, int]:
    second = math.ceil(at.timestamp())
    return datetime.fromtimestamp(second, UTC), second


def schedule_dispatch(scoped: Session, at: datetime) -> None:
    """Dispatch this workspace's messages at the end of ``at``'s second (one job per second)."""
    workspace_id = require_workspace(scoped)
    run_at, second = _at_second(at)
    enqueue(
        scoped,
        JobSpec(
            DISPATCH_TASK,
            {},
            run_at=run_at,
            workspace_id=workspace_id,
            queue=QUEUE,
            idempotency_key=f"{DISPATCH_TASK}:{workspace_id}:{second}",
        ),
    )


def schedule_sandbox_receipts(scoped: Session, at: datetime) -> None:
    workspace_id = require_workspace(scoped)
    run_at, second = _at_second(at)
    bucket = second - second % 5
    enqueue(
        scoped,
        JobSpec(
            SANDBOX_TASK,
            {},
            run_at=run_at,
            workspace_id=workspace_id,
            queue=QUEUE,
            idempotency_key=f"{SANDBOX_TASK}:{workspace_id}:{bucket}",
        ),
    )
