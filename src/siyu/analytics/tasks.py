"""Batch jobs: a requested run, and the schedule's nightly one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siyu.analytics.config import SCHEDULED_TASK
from siyu.analytics.runs import TASK, request_run, run_batch
from siyu.core.errors import ConflictError
from siyu.jobs.registry import TaskContext, task
from siyu.storage.scoping import Scope


@task(TASK)
def analytics_run(ctx: TaskContext, payload: dict[str, Any]) -> None:
    if ctx.workspace_id is None:
        raise ValueError("a batch run needs a workspace")
    scope = Scope.workspace(ctx.workspace_id)
    run_batch(
        lambda: ctx.db.read(scope),
        lambda: ctx.db.transaction(scope),
        str(payload["run_id"]),
        Path(payload["data_dir"]),
    )


@task(SCHEDULED_TASK)
def analytics_scheduled_run(ctx: TaskContext, payload: dict[str, Any]) -> None:
    """Queue the workspace's run (as if requested), unless one is already on its way."""
    if ctx.workspace_id is None:
        raise ValueError("a scheduled batch run needs a workspace")
    try:
        with ctx.db.transaction(Scope.workspace(ctx.workspace_id)) as s:
            request_run(s, None, Path(payload["data_dir"]), trigger="schedule")
    except ConflictError:
        return
