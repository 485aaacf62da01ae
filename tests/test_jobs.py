"""The durable job queue: claims, leases, retries, dead letters, idempotency, cron."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

import tests.support.tasks as test_tasks
from siyu.core.clock import utcnow
from siyu.jobs import queue
from siyu.jobs.contracts import JobSpec, JobStatus
from siyu.jobs.cron import next_fire
from siyu.jobs.errors import InvalidCronError
from siyu.jobs.scheduler import ensure_schedule, fire_due_schedules
from siyu.jobs.tables import Job, Schedule
from siyu.jobs.worker import Worker
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

SYSTEM = Scope.unscoped_system()


def _job(db: Database, job_id: str) -> Job:
    with db.transaction(SYSTEM) as s:
        row = s.get(Job, job_id)
        assert row is not None
        s.expunge(row)
        return row


def test_a_job_runs_once_and_succeeds(db: Database) -> None:
    test_tasks.RUNS.clear()
    with db.transaction(SYSTEM) as s:
        job_id = queue.enqueue(s, JobSpec(task="test.record", payload={}))
    assert job_id
    worker = Worker(db, lease_seconds=5)
    assert worker.run_until_idle() == 1
    assert [job_id] == test_tasks.RUNS
    row = _job(db, job_id)
    assert row.status == JobStatus.SUCCEEDED and row.attempts == 1 and row.finished_at


def test_future_jobs_wait_for_their_time(db: Database) -> None:
    with db.transaction(SYSTEM) as s:
        job_id = queue.enqueue(s, JobSpec(task="test.record", payload={}, run_at=utcnow() + timedelta(hours=1)))
    assert Worker(db).run_until_idle() == 0
    assert _job(db, job_id or "").status == JobStatus.SCHEDULED


def test_idempotency_key_adds_a_job_once(db: Database) -> None:
    spec = JobSpec(task="test.record", payload={}, idempotency_key="welcome:pf_1")
    with db.transaction(SYSTEM) as s:
        first = queue.enqueue(s, spec)
        second = queue.enqueue(s, spec)
        added = queue.enqueue_many(s, [spec, spec])
        count = len(s.scalars(select(Job.id).where(Job.idempotency_key == "welcome:pf_1")).all())
    assert first and second is None and added == 0 and count == 1


def test_failures_back_off_then_go_to_the_dead_letters(db: Database) -> None:
    with db.transaction(SYSTEM) as s:
        job_id = queue.enqueue(s, JobSpec(task="test.fail", payload={}, max_attempts=3))
    assert job_id
    worker = Worker(db, lease_seconds=5)
    delays = []
    for attempt in range(1, 4):
        assert worker.run_once()
        row = _job(db, job_id)
        assert row.attempts == attempt
        assert f"provider said no (attempt {attempt})" in (row.last_error or "")
        if attempt < 3:
            assert row.status == JobStatus.SCHEDULED
            delays.append((row.run_at - utcnow()).total_seconds())
            with db.transaction(SYSTEM) as s:  # skip the wait
                s.execute(update(Job).where(Job.id == job_id).values(run_at=utcnow()))
    assert _job(db, job_id).status == JobStatus.DEAD
    # 10 s then 20 s, each with ±20% jitter
    assert 7 <= delays[0] <= 12.5 and 15 <= delays[1] <= 24.5
    assert worker.run_once() is False


def test_retry_later_does_not_use_up_an_attempt(db: Database) -> None:
    test_tasks.RUNS.clear()
    with db.transaction(SYSTEM) as s:
        job_id = queue.enqueue(s, JobSpec(task="test.later", payload={}, max_attempts=1))
    worker = Worker(db)
    worker.run_once()
    assert _job(db, job_id or "").status == JobStatus.SCHEDULED
    worker.run_once()
    assert [job_id] == test_tasks.RUNS
    assert _job(db, job_id or "").attempts == 1


def test_unknown_task_goes_dead_with_a_clear_error(db: Database) -> None:
    with db.transaction(SYSTEM) as s:
        job_id = queue.enqueue(s, JobSpec(task="no.such.task", payload={}, max_attempts=1))
    Worker(db).run_once()
    row = _job(db, job_id or "")
    assert row.status == JobStatus.DEAD and "no task named 'no.such.task'" in (row.last_error or "")


def test_dead_jobs_can_be_retried_and_scheduled_ones_cancelled(db: Database) -> None:
    with db.transaction(SYSTEM) as s:
        dead = queue.enqueue(s, JobSpec(task="test.fail", payload={}, max_attempts=1))
        later = queue.enqueue(s, JobSpec(task="test.record", payload={}, run_at=utcnow() + timedelta(days=1)))
    Worker(db).run_once()
    with db.transaction(SYSTEM) as s:
        again = queue.requeue_dead(s, dead or "")
        cancelled = queue.cancel(s, later or "")
    assert again.status == JobStatus.SCHEDULED and again.attempts == 0
    assert cancelled.status == JobStatus.CANCELLED


def test_two_workers_never_run_the_same_job(db: Database) -> None:
    test_tasks.RUNS.clear()
    n = 120
    with db.transaction(SYSTEM) as s:
        queue.enqueue_many(s, (JobSpec(task="test.record", payload={"sleep": 0.002}) for _ in range(n)))
    workers = [Worker(db, lease_seconds=30, worker_id=f"w{i}") for i in range(4)]
    threads = [threading.Thread(target=w.run_until_idle) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(test_tasks.RUNS) == n
    assert len(set(test_tasks.RUNS)) == n
    with db.transaction(SYSTEM) as s:
        statuses = set(s.scalars(select(Job.status)))
    assert statuses == {JobStatus.SUCCEEDED}


def test_expired_lease_is_claimed_again(db: Database) -> None:
    with db.transaction(SYSTEM) as s:
        job_id = queue.enqueue(s, JobSpec(task="test.record", payload={}))
        claimed = queue.claim(s, worker_id="ghost", lease_seconds=30)
    assert [c.id for c in claimed] == [job_id]
    with db.transaction(SYSTEM) as s:
        assert queue.claim(s, worker_id="other", lease_seconds=30) == []
        s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    with db.transaction(SYSTEM) as s:
        again = queue.claim(s, worker_id="other", lease_seconds=30)
    assert [c.attempts for c in again] == [2]
    with db.transaction(SYSTEM) as s:
        # The ghost's late completion is ignored: it no longer holds the lease.
        assert queue.complete(s, job_id=job_id or "", worker_id="ghost") is False
        assert queue.complete(s, job_id=job_id or "", worker_id="other") is True


def test_cron_schedule_fires_once_per_firing(db: Database) -> None:
    with db.transaction(SYSTEM) as s:
        sched = ensure_schedule(s, name="nightly", cron="0 2 * * *", task="test.record", timezone="Asia/Shanghai")
        again = ensure_schedule(s, name="nightly", cron="0 2 * * *", task="test.record", timezone="Asia/Shanghai")
    assert sched.id == again.id
    assert sched.next_run_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).hour == 2
    with db.transaction(SYSTEM) as s:
        s.execute(update(Schedule).values(next_run_at=utcnow() - timedelta(minutes=1)))
    with db.transaction(SYSTEM) as s:
        assert fire_due_schedules(s) == 1
    with db.transaction(SYSTEM) as s:
        assert fire_due_schedules(s) == 0  # next firing is tomorrow
        row = s.scalar(select(Schedule))
        assert row is not None and row.next_run_at > utcnow()
        jobs = s.scalars(select(Job).where(Job.schedule_id.is_(None))).all()
    assert len(jobs) == 1 and jobs[0].idempotency_key and jobs[0].idempotency_key.startswith("schedule:")


def test_processes_starting_at_once_install_a_schedule_once(db: Database) -> None:
    """Server processes start together: each installs the system schedules, and the one that
    loses the race finds the winner's row instead of failing its start."""
    first_inserted, first_may_commit = threading.Event(), threading.Event()
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def first() -> None:
        with db.transaction(SYSTEM) as s:
            results["first"] = ensure_schedule(s, name="race", cron="0 2 * * *", task="test.record").id
            first_inserted.set()
            first_may_commit.wait(10)

    def second() -> None:
        try:
            with db.transaction(SYSTEM) as s:
                results["second"] = ensure_schedule(s, name="race", cron="0 2 * * *", task="test.record").id
        except BaseException as exc:
            errors.append(exc)

    a = threading.Thread(target=first)
    a.start()
    assert first_inserted.wait(10)
    b = threading.Thread(target=second)
    b.start()
    time.sleep(0.3)  # the second is now waiting on the first's uncommitted row (or write lock)
    first_may_commit.set()
    a.join(10)
    b.join(10)
    assert not errors
    assert results["first"] == results["second"]
    with db.transaction(SYSTEM) as s:
        assert len(s.scalars(select(Schedule).where(Schedule.name == "race")).all()) == 1


def test_invalid_cron_is_rejected() -> None:
    with pytest.raises(InvalidCronError):
        from siyu.jobs.cron import validate_cron

        validate_cron("61 * * * *", "Asia/Shanghai")


def test_cron_follows_the_time_zone() -> None:
    from datetime import UTC, datetime

    after = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert next_fire("0 9 * * *", "Asia/Shanghai", after) == datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


def test_serve_runs_scheduler_and_workers_in_process(db: Database) -> None:
    from fastapi.testclient import TestClient

    from siyu.api.app import create_app
    from tests.conftest import settings_for

    test_tasks.RUNS.clear()
    settings = settings_for(db, task_modules="tests.support.tasks", job_poll_seconds=0.05, workers_in_process=2)
    with TestClient(create_app(settings, db, background=True)):
        with db.transaction(SYSTEM) as s:
            job_id = queue.enqueue(s, JobSpec(task="test.record", payload={}))
            schedules = {row.name for row in s.scalars(select(Schedule))}
        deadline = time.monotonic() + 20
        while not test_tasks.RUNS and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [job_id] == test_tasks.RUNS
    assert {"system.purge_finished_jobs", "system.purge_expired_sessions", "system.refresh_statistics"} <= schedules
