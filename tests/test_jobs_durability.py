"""Job durability across processes: kill -9 a worker mid-job, and a million timers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, text

from siyu.core.clock import utcnow
from siyu.jobs import queue
from siyu.jobs.contracts import JobSpec, JobStatus
from siyu.jobs.tables import Job
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = Scope.unscoped_system()


def _worker(db: Database) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SIYU_DATABASE_URL": db.url,
        "SIYU_TASK_MODULES": "tests.support.tasks",
        "SIYU_JOB_POLL_SECONDS": "0.1",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "siyu.cli.main", "worker", "--lease-seconds", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


def test_job_of_a_killed_worker_runs_again_after_its_lease(db: Database, tmp_path: Path) -> None:
    with db.transaction(SYSTEM) as s:
        job_id = queue.enqueue(s, JobSpec(task="test.slow_once", payload={"dir": str(tmp_path)}))
    first = _worker(db)
    try:
        assert _wait_for(tmp_path / "attempt-1", 60), "first worker never started the job"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    with db.transaction(SYSTEM) as s:
        row = s.get(Job, job_id)
        assert row is not None and row.status == JobStatus.RUNNING  # orphaned, lease still held
    second = _worker(db)
    try:
        assert _wait_for(tmp_path / "done", 60), "the job was not run again"
    finally:
        second.terminate()
        second.wait(timeout=20)
    assert (tmp_path / "done").read_text() == "2"
    with db.transaction(SYSTEM) as s:
        row = s.get(Job, job_id)
        assert row is not None
        assert row.status == JobStatus.SUCCEEDED and row.attempts == 2


def test_a_million_timers_and_the_due_ones_are_claimed_through_the_index(db: Database) -> None:
    now = utcnow()
    future = (
        JobSpec(task="test.record", payload={"n": i}, run_at=now + timedelta(minutes=5 + i % 43_200))
        for i in range(1_000_000)
    )
    started = time.perf_counter()
    with db.transaction(SYSTEM) as s:
        assert queue.enqueue_many(s, future) == 1_000_000
        due = queue.enqueue_many(
            s, (JobSpec(task="test.record", payload={"due": i}, run_at=now - timedelta(seconds=i)) for i in range(50))
        )
    insert_seconds = time.perf_counter() - started
    assert due == 50
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE jobs"))
    _assert_claim_uses_the_due_index(db)
    started = time.perf_counter()
    with db.transaction(SYSTEM) as s:
        claimed = queue.claim(s, worker_id="w", lease_seconds=30, limit=100)
    claim_ms = (time.perf_counter() - started) * 1000
    assert sorted(c.payload["due"] for c in claimed) == list(range(50))
    assert claim_ms < 500, f"claim took {claim_ms:.0f} ms"
    print(f"\n1M timers inserted in {insert_seconds:.1f} s; due ones claimed in {claim_ms:.1f} ms")


def _assert_claim_uses_the_due_index(db: Database) -> None:
    stmt = queue.due_jobs_query(utcnow(), 100)
    with db.engine.connect() as conn:
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        if conn.dialect.name == "sqlite":
            plan = " | ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
            assert "ix_jobs_due" in plan and "SCAN jobs" not in plan.replace("USING INDEX", ""), plan
        else:
            plan = " | ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled}"))
            assert "ix_jobs_due" in plan and "Seq Scan" not in plan, plan


def test_claimed_jobs_are_exactly_the_due_ones(db: Database) -> None:
    now = utcnow()
    with db.transaction(SYSTEM) as s:
        queue.enqueue_many(
            s,
            [
                JobSpec(task="test.record", payload={"i": i}, run_at=now + timedelta(seconds=-1 if i % 2 else 3600))
                for i in range(20)
            ],
        )
    with db.transaction(SYSTEM) as s:
        claimed = queue.claim(s, worker_id="w", lease_seconds=30, limit=100)
        remaining = s.scalars(select(Job.status).where(Job.status == JobStatus.SCHEDULED)).all()
    assert sorted(c.payload["i"] for c in claimed) == list(range(1, 20, 2))
    assert len(remaining) == 10


def test_two_worker_processes_never_run_the_same_job(db: Database, tmp_path: Path) -> None:
    out = tmp_path / "runs.txt"
    with db.transaction(SYSTEM) as s:
        queue.enqueue_many(s, (JobSpec(task="test.append", payload={"file": str(out)}) for _ in range(80)))
    workers = [_worker(db), _worker(db)]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with db.transaction(SYSTEM) as s:
                left = s.scalars(select(Job.id).where(Job.status != JobStatus.SUCCEEDED)).all()
            if not left:
                break
            time.sleep(0.2)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=20)
    lines = out.read_text().splitlines()
    job_ids = [line.split()[0] for line in lines]
    assert len(job_ids) == 80 and len(set(job_ids)) == 80
    assert len({line.split()[1] for line in lines}) == 2, "both processes should have worked"


def test_postgresql_claims_skip_locked_rows() -> None:
    from sqlalchemy.dialects import postgresql

    sql = str(queue.due_jobs_query(utcnow(), 10).compile(dialect=postgresql.dialect()))
    assert "FOR UPDATE SKIP LOCKED" in sql
