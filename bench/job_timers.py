"""Claim latency of the job queue with few versus a million future timers.

    python bench/job_timers.py [--timers 1000000] [--database-url URL]

Builds a fresh database, measures the median time to claim 100 due jobs with an empty backlog,
then again with N future timers queued, and once more with the partial index on run_at dropped
(the plan a naive queue would get). Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from siyu.core.clock import utcnow
from siyu.jobs import queue
from siyu.jobs.contracts import JobSpec
from siyu.storage import migrate
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

SYSTEM = Scope.unscoped_system()


def claim_median(db: Database, rounds: int = 15) -> float:
    samples = []
    for r in range(rounds):
        now = utcnow()
        with db.transaction(SYSTEM) as s:
            queue.enqueue_many(
                s, (JobSpec(task="bench", payload={"r": r}, run_at=now - timedelta(seconds=1)) for _ in range(100))
            )
        started = time.perf_counter()
        with db.transaction(SYSTEM) as s:
            claimed = queue.claim(s, worker_id="bench", lease_seconds=60, limit=100)
        samples.append((time.perf_counter() - started) * 1000)
        assert len(claimed) == 100
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timers", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    db = Database(args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
    migrate.upgrade(db.engine)
    empty = claim_median(db)
    started = time.perf_counter()
    now = utcnow()
    with db.transaction(SYSTEM) as s:
        queue.enqueue_many(
            s,
            (
                JobSpec(task="bench", payload={"i": i}, run_at=now + timedelta(days=1, seconds=i))
                for i in range(args.timers)
            ),
        )
    insert_s = time.perf_counter() - started
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE jobs"))
    loaded = claim_median(db)
    with db.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_jobs_due"))
    naive = claim_median(db, rounds=5)
    print(
        f"backend {db.engine.dialect.name}; {args.timers:,} timers inserted in {insert_s:.1f} s "
        f"({args.timers / insert_s:,.0f}/s)"
    )
    print(
        f"claim 100 due, median: empty {empty:.2f} ms | with timers {loaded:.2f} ms "
        f"(x{loaded / empty:.2f}) | without the run_at index {naive:.2f} ms (x{naive / loaded:.1f} slower)"
    )


if __name__ == "__main__":
    main()
