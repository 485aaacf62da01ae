"""Campaign jobs: a campaign's run, queued when it is scheduled, approved or resumed; its
checkpoints and guard checks, queued when it launches; its test's decision; and a recurring
campaign's occurrences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from siyu.campaigns.checkpoints import CHECKPOINT_TASK, check
from siyu.campaigns.lifecycle import DECIDE_TASK, RECUR_TASK, RUN_TASK
from siyu.campaigns.recurring import occur
from siyu.campaigns.run import run_campaign
from siyu.campaigns.winner import decide
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


@task(DECIDE_TASK)
def decide_winner(ctx: TaskContext, payload: dict[str, Any]) -> None:
    if ctx.workspace_id is None:
        raise ValueError("a campaign's test needs a workspace")
    with ctx.db.transaction(Scope.workspace(ctx.workspace_id)) as scoped:
        decide(scoped, str(payload["campaign_id"]))


@task(RECUR_TASK)
def recur(ctx: TaskContext, payload: dict[str, Any]) -> None:
    if ctx.workspace_id is None:
        raise ValueError("a recurring campaign needs a workspace")
    with ctx.db.transaction(Scope.workspace(ctx.workspace_id)) as scoped:
        occur(scoped, str(payload["campaign_id"]), datetime.fromisoformat(str(payload["at"])))
