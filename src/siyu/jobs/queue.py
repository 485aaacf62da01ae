"""The job queue: enqueue, claim with a lease, complete, retry with backoff, dead-letter.

Claiming is one statement, ``WITH due AS MATERIALIZED (SELECT … ORDER BY run_at LIMIT n FOR
UPDATE SKIP LOCKED) UPDATE … FROM due RETURNING …``: on PostgreSQL concurrent workers skip each
other's rows; on SQLite the statement runs under the database write lock. Either way a job is handed to one worker.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError
from siyu.core.ids import new_id
from siyu.core.pagination import Page
from siyu.jobs.bulk import insert_jobs
from siyu.jobs.contracts import ClaimedJob, JobPublic, JobSpec, JobStatus
from siyu.jobs.tables import Job
from siyu.storage.paging import newest_first

_jobs = cast(Table, Job.__table__)
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 3600.0
ERROR_MAX_CHARS = 4000


def _row(spec: JobSpec, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("job_"),
        "workspace_id": spec.workspace_id,
        "queue": spec.queue,
        "task": spec.task,
        "payload": spec.payload,
        "status": JobStatus.SCHEDULED.value,
        "run_at": spec.run_at or now,
        "attempts": 0,
        "max_attempts": spec.max_attempts,
        "idempotency_key": spec.idempotency_key,
        "created_at": now,
    }


def enqueue(session: Session, spec: JobSpec) -> str | None:
    """Add a job; with an idempotency key already used, nothing is added and None is returned."""
    dialect = session.get_bind().dialect.name
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert_(_jobs)
        .values(_row(spec, utcnow()))
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(_jobs.c.id)
    )
    return session.execute(stmt).scalar_one_or_none()


def enqueue_many(session: Session, specs: Iterable[JobSpec]) -> int:
    """Bulk enqueue (journeys keep millions of timers). Returns how many were added; specs whose
    idempotency key is already taken are skipped."""
    return insert_jobs(session, specs, utcnow())


def due_jobs_query(now: datetime, limit: int, queues: Sequence[str] | None = None) -> Any:
    """The claim's inner SELECT: served by the partial index on run_at of scheduled jobs."""
    stmt = (
        select(_jobs.c.id)
        .where(_jobs.c.status == JobStatus.SCHEDULED.value, _jobs.c.run_at <= now)
        .order_by(_jobs.c.run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if queues:
        stmt = stmt.where(_jobs.c.queue.in_(list(queues)))
    return stmt


def claim(
    session: Session,
    *,
    worker_id: str,
    lease_seconds: float,
    limit: int = 1,
    queues: Sequence[str] | None = None,
) -> list[ClaimedJob]:
    """Lease up to ``limit`` due jobs to this worker. Commit promptly: the lease starts now."""
    now = utcnow()
    _reap_expired_leases(session, now)
    # A materialized CTE, not ``id IN (… LIMIT n)``: PostgreSQL may run such a subquery again
    # for rows it scans and lease more than ``limit`` jobs.
    due = due_jobs_query(now, limit, queues).cte("due").prefix_with("MATERIALIZED")
    stmt = (
        update(_jobs)
        .where(_jobs.c.id == due.c.id)
        .values(
            status=JobStatus.RUNNING.value,
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=_jobs.c.attempts + 1,
            started_at=now,
        )
        .returning(
            _jobs.c.id,
            _jobs.c.task,
            _jobs.c.payload,
            _jobs.c.workspace_id,
            _jobs.c.attempts,
            _jobs.c.max_attempts,
        )
    )
    return [ClaimedJob(*row) for row in session.execute(stmt).all()]


def _reap_expired_leases(session: Session, now: datetime) -> None:
    """Jobs whose worker vanished (crash, kill -9) go back to the queue, or die if out of tries."""
    lost = "lease expired: the worker stopped without finishing"

    def expired(out_of_tries: bool) -> Any:
        tries = _jobs.c.attempts >= _jobs.c.max_attempts
        return (
            select(_jobs.c.id)
            .where(
                _jobs.c.status == JobStatus.RUNNING.value,
                _jobs.c.lease_expires_at <= now,
                tries if out_of_tries else ~tries,
            )
            .limit(100)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )

    cleared = {"lease_owner": None, "lease_expires_at": None, "last_error": lost}
    session.execute(
        update(_jobs)
        .where(_jobs.c.id.in_(expired(True)))
        .values(status=JobStatus.DEAD.value, finished_at=now, **cleared)
    )
    session.execute(
        update(_jobs)
        .where(_jobs.c.id.in_(expired(False)))
        .values(status=JobStatus.SCHEDULED.value, run_at=now, **cleared)
    )


def extend_lease(session: Session, *, job_id: str, worker_id: str, lease_seconds: float) -> bool:
    result = session.execute(
        update(_jobs)
        .where(
            _jobs.c.id == job_id,
            _jobs.c.lease_owner == worker_id,
            _jobs.c.status == JobStatus.RUNNING.value,
        )
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    return bool(cast(CursorResult[Any], result).rowcount)


def complete(session: Session, *, job_id: str, worker_id: str) -> bool:
    """Mark done. False if the lease was lost meanwhile (another worker owns the job now)."""
    result = session.execute(
        update(_jobs)
        .where(
            _jobs.c.id == job_id,
            _jobs.c.lease_owner == worker_id,
            _jobs.c.status == JobStatus.RUNNING.value,
        )
        .values(
            status=JobStatus.SUCCEEDED.value,
            finished_at=utcnow(),
            lease_owner=None,
            lease_expires_at=None,
            last_error=None,
        )
    )
    return bool(cast(CursorResult[Any], result).rowcount)


def retry_delay(attempts: int, base: float = BACKOFF_BASE_SECONDS) -> float:
    """Exponential backoff with ±20% jitter: base, 2·base, 4·base … capped at an hour."""
    delay = min(base * (2 ** max(attempts - 1, 0)), BACKOFF_MAX_SECONDS)
    return float(delay * random.uniform(0.8, 1.2))


def fail(
    session: Session,
    *,
    job: ClaimedJob,
    worker_id: str,
    error: str,
    delay_seconds: float | None = None,
    count_attempt: bool = True,
) -> JobStatus:
    """Schedule a retry after backoff, or move the job to the dead letters with its last error."""
    now = utcnow()
    out_of_tries = count_attempt and job.attempts >= job.max_attempts
    values: dict[str, Any] = {
        "lease_owner": None,
        "lease_expires_at": None,
        "last_error": error[:ERROR_MAX_CHARS],
    }
    if out_of_tries:
        status = JobStatus.DEAD
        values.update(status=status.value, finished_at=now)
    else:
        status = JobStatus.SCHEDULED
        delay = retry_delay(job.attempts) if delay_seconds is None else delay_seconds
        values.update(status=status.value, run_at=now + timedelta(seconds=delay))
        if not count_attempt:
            values["attempts"] = _jobs.c.attempts - 1
    session.execute(update(_jobs).where(_jobs.c.id == job.id, _jobs.c.lease_owner == worker_id).values(**values))
    return status


def requeue_dead(session: Session, job_id: str) -> JobPublic:
    """Give a dead job a fresh set of attempts (an operator fixed the cause)."""
    row = session.get(Job, job_id)
    if row is None or row.status not in (JobStatus.DEAD, JobStatus.CANCELLED):
        raise NotFoundError("no dead or cancelled job with this id")
    row.status, row.attempts, row.run_at, row.finished_at = JobStatus.SCHEDULED, 0, utcnow(), None
    session.flush()
    return job_to_public(row)


def cancel(session: Session, job_id: str) -> JobPublic:
    row = session.get(Job, job_id)
    if row is None or row.status != JobStatus.SCHEDULED:
        raise NotFoundError("no scheduled job with this id")
    row.status, row.finished_at = JobStatus.CANCELLED, utcnow()
    session.flush()
    return job_to_public(row)


def job_to_public(row: Job) -> JobPublic:
    return JobPublic(
        id=row.id,
        task=row.task,
        queue=row.queue,
        status=JobStatus(row.status),
        workspace_id=row.workspace_id,
        run_at=row.run_at,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def get_job(session: Session, job_id: str) -> JobPublic:
    row = session.get(Job, job_id)
    if row is None:
        raise NotFoundError("job not found")
    return job_to_public(row)


def list_jobs(
    session: Session, *, status: JobStatus | None = None, cursor: str | None = None, limit: int = 50
) -> Page[JobPublic]:
    """Newest first; a workspace-scoped session sees only that workspace's jobs."""
    stmt = select(Job)
    if status is not None:
        stmt = stmt.where(Job.status == status.value)
    return newest_first(session, stmt, Job.id, cursor=cursor, limit=limit, convert=job_to_public)


def count_by_status(session: Session) -> dict[str, int]:
    stmt = select(Job.status, func.count()).group_by(Job.status)
    counts = {s.value: 0 for s in JobStatus}
    counts.update({status: int(n) for status, n in session.execute(stmt).all()})
    return counts
