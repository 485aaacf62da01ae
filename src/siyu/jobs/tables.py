"""Job and schedule tables.

The claim path reads only the partial index on ``run_at`` of scheduled jobs (and the one on
``lease_expires_at`` of running jobs), so millions of future timers cost nothing to skip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.storage.base import Base, WorkspaceScoped


class Job(WorkspaceScoped, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index(
            "ix_jobs_due",
            "run_at",
            sqlite_where=text("status = 'scheduled'"),
            postgresql_where=text("status = 'scheduled'"),
        ),
        Index(
            "ix_jobs_lease",
            "lease_expires_at",
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        Index("ix_jobs_workspace_status", "workspace_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Workspace jobs are scoped like brand data; system jobs (housekeeping) have none.
    workspace_optional = True
    workspace_id: Mapped[str | None] = mapped_column(String(32), default=None)  # type: ignore[assignment]
    queue: Mapped[str] = mapped_column(String(40), default="default")
    task: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    run_at: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    lease_owner: Mapped[str | None] = mapped_column(String(80), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    schedule_id: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Schedule(WorkspaceScoped, Base):
    """A recurring job: a cron expression in a time zone; each firing enqueues one job."""

    __tablename__ = "job_schedules"
    __table_args__ = (Index("ix_job_schedules_due", "enabled", "next_run_at"),)

    workspace_optional = True
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str | None] = mapped_column(String(32), default=None)  # type: ignore[assignment]
    name: Mapped[str] = mapped_column(String(120), unique=True)
    cron: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    task: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime] = mapped_column()
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
