"""Channel jobs: dispatch a workspace's due messages, play the sandbox's receipts, and the
minute sweep that makes sure neither is forgotten."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from siyu.channels.dispatch import Dispatcher
from siyu.channels.ledger import QUEUED, SENDING, SENT, next_due
from siyu.channels.sandbox import simulate_receipts
from siyu.channels.scheduling import schedule_dispatch, schedule_sandbox_receipts
from siyu.channels.tables import ChannelAccount, Message
from siyu.channels.tokens import DbTokenStore
from siyu.core.clock import utcnow
from siyu.jobs.registry import TaskContext, task
from siyu.storage.scoping import Scope

# A dispatch job hands over to the next after this long, so one workspace's big send does
# not hold a worker for hours while others wait.
DISPATCH_BUDGET_SECONDS = 240.0
SANDBOX_RECHECK_SECONDS = 5.0


def _workspace(ctx: TaskContext) -> str:
    if ctx.workspace_id is None:
        raise ValueError("a channels job needs a workspace")
    return ctx.workspace_id


@task("channels.dispatch")
def dispatch(ctx: TaskContext, payload: dict[str, Any]) -> None:
    workspace_id = _workspace(ctx)
    secret_key = ctx.settings.secret_key
    tokens = DbTokenStore(ctx.db, workspace_id, secret_key)
    report = Dispatcher(ctx.db, workspace_id, secret_key, tokens).run(
        budget_seconds=DISPATCH_BUDGET_SECONDS, lease_seconds=ctx.settings.dispatch_lease_seconds
    )
    with ctx.db.transaction(Scope.workspace(workspace_id)) as scoped:
        due = next_due(scoped)
        if due is not None:
            schedule_dispatch(scoped, max(due, utcnow()))
        if any(report.by_account.get(a, 0) for a in _sandbox_accounts(scoped)):
            schedule_sandbox_receipts(scoped, utcnow() + timedelta(seconds=SANDBOX_RECHECK_SECONDS))


def _sandbox_accounts(scoped: Any) -> list[str]:
    return list(scoped.scalars(select(ChannelAccount.id).where(ChannelAccount.provider == "sandbox")))


@task("channels.sandbox_receipts")
def sandbox_receipts(ctx: TaskContext, payload: dict[str, Any]) -> None:
    workspace_id = _workspace(ctx)
    with ctx.db.transaction(Scope.workspace(workspace_id)) as scoped:
        report = simulate_receipts(scoped, utcnow())
        if report.waiting:
            schedule_sandbox_receipts(scoped, utcnow() + timedelta(seconds=SANDBOX_RECHECK_SECONDS))


@task("channels.sweep")
def sweep(ctx: TaskContext, payload: dict[str, Any]) -> None:
    """Every minute: dispatch for each workspace with due messages; sandbox receipts for each
    with messages awaiting one."""
    now = utcnow()
    with ctx.db.read(Scope.unscoped_system()) as system:
        due = set(
            system.scalars(
                select(Message.workspace_id)
                .where(Message.status.in_((QUEUED, SENDING)), Message.not_before <= now)
                .distinct()
            )
        )
        awaiting = set(
            system.scalars(
                select(Message.workspace_id)
                .join(ChannelAccount, ChannelAccount.id == Message.account_id)
                .where(Message.status == SENT, ChannelAccount.provider == "sandbox")
                .distinct()
            )
        )
    for workspace_id in due | awaiting:
        with ctx.db.transaction(Scope.workspace(workspace_id)) as scoped:
            if workspace_id in due:
                schedule_dispatch(scoped, now)
            if workspace_id in awaiting:
                schedule_sandbox_receipts(scoped, now)
