"""Accounts housekeeping jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from siyu.accounts.tables import LoginAttempt, LoginSession
from siyu.core.clock import utcnow
from siyu.jobs.registry import TaskContext, task
from siyu.storage.scoping import Scope


@task("accounts.purge_expired")
def purge_expired(ctx: TaskContext, payload: dict[str, Any]) -> None:
    """Drop expired sessions and old failed-login records."""
    now = utcnow()
    with ctx.db.transaction(Scope.unscoped_system()) as session:
        session.execute(delete(LoginSession).where(LoginSession.expires_at < now - timedelta(days=1)))
        session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - timedelta(days=1)))
