"""Campaign jobs: a campaign's run, queued when it is scheduled, approved or resumed, and its
checkpoints and guard checks, queued when it launches."""

from __future__ import annotations

from typing import Any

from siyu.campaigns.checkpoints import CHECKPOINT_TASK, check
from siyu.campaigns.lifecycle import RUN_TASK
from siyu.campaigns.run import run_campaign
from siyu.channels.prepare import Links
from siyu.jobs.registry import TaskContext, task
from siyu.storage.scoping import Scope


@task(RUN_TASK)
def run(ctx: TaskContext, payload: dict[str, Any]) -> None:
    if ctx.workspace_id is None:
        raise ValueError("a campaign's run needs a workspace")
    links = Links(ctx.settings.public_url, ctx.settings.secret_key)
    run_campaign(ctx.db, ctx.workspace_id, str(payload["campaign_id"]), links)


@task(CHECKPOINT_TASK)
def checkpoint(ctx: TaskContext, payload: dict[str, Any]) -> None:
    if ctx.workspace_id is None:
        raise ValueError("a campaign's checkpoint needs a workspace")
    with ctx.db.transaction(Scope.workspace(ctx.workspace_id)) as scoped:
        check(scoped, str(payload["campaign_id"]), int(payload["minutes"]), bool(payload["snapshot"]))
