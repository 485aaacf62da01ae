"""Housekeeping for the job table itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from siyu.core.clock import utcnow
from siyu.jobs.contracts import JobStatus
from siyu.jobs.registry import TaskContext, task
from siyu.jobs.tables import Job
from siyu.storage.planner import refresh_statistics
from siyu.storage.scoping import Scope

SUCCEEDED_RETENTION_DAYS = 14


@task("jobs.purge_finished")
def purge_finished(ctx: TaskContext, payload: dict[str, Any]) -> None:
    """Delete succeeded and cancelled jobs older than the retention (dead ones stay for review)."""
    days = int(payload.get("days", SUCCEEDED_RETENTION_DAYS))
    cutoff = utcnow() - timedelta(days=days)
    with ctx.db.transaction(Scope.unscoped_system()) as session:
        session.execute(
            delete(Job).where(
                Job.status.in_([JobStatus.SUCCEEDED.value, JobStatus.CANCELLED.value]),
                Job.finished_at < cutoff,
            )
        )


@task("storage.refresh_statistics")
def refresh_planner_statistics(ctx: TaskContext, payload: dict[str, Any]) -> None:
    """Keep the query planner's table statistics current (see ``storage.planner``)."""
    refresh_statistics(ctx.db.engine)
