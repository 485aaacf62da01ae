"""Fast bulk insert of jobs, for the millions of timers journeys schedule.

Bypasses per-row ORM work: rows become plain tuples, then PostgreSQL gets them through COPY into
a temporary table and one ``INSERT … SELECT … ON CONFLICT DO NOTHING``; SQLite through the
driver's ``executemany`` with ``ON CONFLICT DO NOTHING``. Both report how many rows were new.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy.orm import Session

from siyu.core.clock import ensure_utc
from siyu.core.ids import new_id
from siyu.jobs.contracts import JobSpec, JobStatus

COLUMNS = (
    "id",
    "workspace_id",
    "queue",
    "task",
    "payload",
    "status",
    "run_at",
    "attempts",
    "max_attempts",
    "idempotency_key",
    "created_at",
)
CHUNK = 50_000


def _tuples(specs: Iterable[JobSpec], now: datetime, sqlite: bool) -> Iterator[tuple[Any, ...]]:
    scheduled = JobStatus.SCHEDULED.value

    def stamp(value: datetime) -> Any:
        aware = ensure_utc(value)
        return aware.replace(tzinfo=None).isoformat(sep=" ") if sqlite else aware

    created = stamp(now)
    for spec in specs:
        yield (
            new_id("job_"),
            spec.workspace_id,
            spec.queue,
            spec.task,
            json.dumps(spec.payload, ensure_ascii=False, separators=(",", ":")),
            scheduled,
            stamp(spec.run_at or now),
            0,
            spec.max_attempts,
            spec.idempotency_key,
            created,
        )


def insert_jobs(session: Session, specs: Iterable[JobSpec], now: datetime) -> int:
    connection = session.connection()
    dialect = connection.dialect.name
    driver = connection.connection.driver_connection
    rows = _tuples(specs, now, sqlite=dialect == "sqlite")
    added = 0
    while batch := list(islice(rows, CHUNK)):
        added += _insert_pg(driver, batch) if dialect == "postgresql" else _insert_sqlite(driver, batch)
    return added


def _insert_sqlite(driver: Any, batch: list[tuple[Any, ...]]) -> int:
    placeholders = ", ".join("?" for _ in COLUMNS)
    before = driver.total_changes
    driver.executemany(
        f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({placeholders}) ON CONFLICT (idempotency_key) DO NOTHING",
        batch,
    )
    return int(driver.total_changes - before)


def _insert_pg(driver: Any, batch: list[tuple[Any, ...]]) -> int:
    cols = ", ".join(COLUMNS)
    with driver.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS jobs_incoming (LIKE jobs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        cur.execute("TRUNCATE jobs_incoming")
        with cur.copy(f"COPY jobs_incoming ({cols}) FROM STDIN") as copy:
            for row in batch:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO jobs ({cols}) SELECT {cols} FROM jobs_incoming ON CONFLICT (idempotency_key) DO NOTHING"
        )
        return int(cur.rowcount)
