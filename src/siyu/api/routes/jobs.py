"""This workspace's background jobs: list, counts, retry dead ones, cancel scheduled ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from siyu.accounts.audit import record_audit
from siyu.api.deps import Admin, Analyst, ScopedSessionDep
from siyu.api.errors import COMMON_ERRORS
from siyu.api.paths import JobId
from siyu.api.schemas import JobCounts, JobPublic, PagePublic
from siyu.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from siyu.jobs import queue
from siyu.jobs.contracts import JobStatus

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=COMMON_ERRORS)


@router.get("", response_model=PagePublic[JobPublic])
def list_jobs(
    principal: Analyst,
    session: ScopedSessionDep,
    status: JobStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> PagePublic[JobPublic]:
    """Newest first, optionally one status (``dead`` lists failures with their last error)."""
    page = queue.list_jobs(session, status=status, cursor=cursor, limit=limit)
    return PagePublic(items=[JobPublic.model_validate(j) for j in page.items], next_cursor=page.next_cursor)


@router.get("/counts", response_model=JobCounts)
def job_counts(principal: Analyst, session: ScopedSessionDep) -> JobCounts:
    """How many jobs are in each status."""
    return JobCounts(counts=queue.count_by_status(session))


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: JobId, principal: Analyst, session: ScopedSessionDep) -> JobPublic:
    return JobPublic.model_validate(queue.get_job(session, job_id))


@router.post("/{job_id}/retry", response_model=JobPublic)
def retry_job(job_id: JobId, principal: Admin, session: ScopedSessionDep) -> JobPublic:
    """Run a dead or cancelled job again with a fresh set of attempts."""
    job = queue.requeue_dead(session, job_id)
    record_audit(session, principal, "job.retry", target_type="job", target_id=job_id)
    return JobPublic.model_validate(job)


@router.post("/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: JobId, principal: Admin, session: ScopedSessionDep) -> JobPublic:
    """Cancel a job that has not started."""
    job = queue.cancel(session, job_id)
    record_audit(session, principal, "job.cancel", target_type="job", target_id=job_id)
    return JobPublic.model_validate(job)
