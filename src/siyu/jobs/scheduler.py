"""Recurring schedules: each due firing enqueues exactly one job (idempotency key per firing)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError
from siyu.core.ids import new_id
from siyu.jobs.contracts import JobSpec, SchedulePublic
from siyu.jobs.cron import next_fire, validate_cron
from siyu.jobs.queue import enqueue
from siyu.jobs.registry import handler_for
from siyu.jobs.tables import Schedule

_schedules = cast(Table, Schedule.__table__)


def schedule_to_public(row: Schedule) -> SchedulePublic:
    return SchedulePublic(
        row.id,
        row.name,
        row.cron,
        row.timezone,
        row.task,
        row.enabled,
        row.next_run_at,
        row.last_run_at,
    )


def ensure_schedule(
    session: Session,
    *,
    name: str,
    cron: str,
    task: str,
    payload: dict[str, Any] | None = None,
    timezone: str = "Asia/Shanghai",
    workspace_id: str | None = None,
) -> SchedulePublic:
    """Create or update the schedule called ``name`` (idempotent; safe at every start, also when
    several server processes start at once: the first to insert it wins, the others find it)."""
    validate_cron(cron, timezone)
    handler_for(task)
    now = utcnow()
    insert_ = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert_(_schedules)
        .values(
            id=new_id("sch_"),
            name=name,
            workspace_id=workspace_id,
            next_run_at=next_fire(cron, timezone, now),
            cron=cron,
            timezone=timezone,
            task=task,
            payload=payload or {},
            enabled=True,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )
    row = session.scalars(select(Schedule).where(Schedule.name == name).execution_options(populate_existing=True)).one()
    if (row.cron, row.timezone, row.task, row.payload) != (cron, timezone, task, payload or {}):
        row.cron, row.timezone, row.task, row.payload = cron, timezone, task, payload or {}
        row.next_run_at = next_fire(cron, timezone, now)
    session.flush()
    return schedule_to_public(row)


def set_workspace_schedule(
    scoped: Session, *, name: str, cron: str | None, task: str, timezone: str, payload: dict[str, Any] | None = None
) -> SchedulePublic | None:
    """A workspace's own recurring job, in its scoped session: created or changed to ``cron``, or
    (``cron`` None) switched off. Returns it, or None when there is none and none is wanted."""
    row = scoped.scalar(select(Schedule).where(Schedule.name == name))
    if cron is None:
        if row is not None and row.enabled:
            row.enabled = False
            scoped.flush()
        return schedule_to_public(row) if row is not None else None
    validate_cron(cron, timezone)
    handler_for(task)
    now = utcnow()
    if row is None:
        row = Schedule(id=new_id("sch_"), name=name, task=task, created_at=now)
        scoped.add(row)
    changed = (row.cron, row.timezone, row.payload, row.enabled) != (cron, timezone, payload or {}, True)
    row.cron, row.timezone, row.task, row.payload, row.enabled = cron, timezone, task, payload or {}, True
    if changed or row.next_run_at is None:
        row.next_run_at = next_fire(cron, timezone, now)
    scoped.flush()
    return schedule_to_public(row)


def set_schedule_enabled(session: Session, schedule_id: str, enabled: bool) -> SchedulePublic:
    row = session.get(Schedule, schedule_id)
    if row is None:
        raise NotFoundError("schedule not found")
    row.enabled = enabled
    if enabled:
        row.next_run_at = next_fire(row.cron, row.timezone, utcnow())
    session.flush()
    return schedule_to_public(row)


def list_schedules(session: Session) -> list[SchedulePublic]:
    return [schedule_to_public(r) for r in session.scalars(select(Schedule).order_by(Schedule.name))]


def fire_due_schedules(session: Session, limit: int = 100) -> int:
    """Enqueue one job per due schedule and move it to its next firing.

    Missed firings (the process was down) collapse into one catch-up run rather than a burst.
    Returns the number of jobs enqueued.
    """
    now = utcnow()
    due = session.scalars(
        select(Schedule)
        .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
        .order_by(Schedule.next_run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    enqueued = 0
    for row in due:
        fire_at = row.next_run_at
        key = f"schedule:{row.id}:{fire_at.isoformat()}"
        spec = JobSpec(
            task=row.task,
            payload=dict(row.payload or {}),
            run_at=fire_at,
            workspace_id=row.workspace_id,
            idempotency_key=key,
        )
        if enqueue(session, spec):
            enqueued += 1
        row.last_run_at = fire_at
        row.next_run_at = next_fire(row.cron, row.timezone, max(fire_at, now))
    session.flush()
    return enqueued
