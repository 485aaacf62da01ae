"""Profile jobs: full identity rebuilds."""

from __future__ import annotations

from typing import Any

from siyu.jobs.registry import TaskContext, task
from siyu.profiles.rebuilds import TASK, run_rebuild
from siyu.storage.scoping import Scope


@task(TASK)
def identity_rebuild(ctx: TaskContext, payload: dict[str, Any]) -> None:
    if ctx.workspace_id is None:
        raise ValueError("an identity rebuild needs a workspace")
    scope = Scope.workspace(ctx.workspace_id)
    run_rebuild(lambda: ctx.db.transaction(scope), str(payload["rebuild_id"]))
