"""Batch jobs: a requested run, the schedule's nightly one, and the segments' refreshes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siyu.analytics.config import SCHEDULED_TASK, SEGMENTS_TASK
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


@task(SEGMENTS_TASK)
def analytics_scheduled_segments(ctx: TaskContext, payload: dict[str, Any]) -> None:
    """Queue a refresh of the workspace's segments, unless a run is already on its way (a full
    run refreshes them too)."""
    if ctx.workspace_id is None:
        raise ValueError("a scheduled refresh of segments needs a workspace")
    try:
        with ctx.db.transaction(Scope.workspace(ctx.workspace_id)) as s:
            request_run(s, None, Path(payload["data_dir"]), trigger="schedule", scope="segments")
    except ConflictError:
        return
