"""Table statistics for the query planners.

SQLite plans without statistics until ANALYZE has run; then it takes every index to be
selective, and a workspace's index — which matches every row of a one-brand installation — may
win over the index that finds the few rows asked for. A scan of the whole workspace for each
order or item looked up makes a large import slower the larger it gets. Statistics are
refreshed on a schedule and as an import grows (SQLite samples a few hundred rows per index, so
this takes milliseconds); on PostgreSQL this is what autovacuum does, run explicitly.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine

log = logging.getLogger(__name__)

SQLITE_ANALYSIS_LIMIT = 400  # rows sampled per index


def refresh_statistics(engine: Engine) -> float:
    """Analyze every table; returns the seconds it took."""
    started = time.perf_counter()
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
        connection.exec_driver_sql("ANALYZE")
    took = time.perf_counter() - started
    log.info("planner statistics refreshed in %.2f s", took)
    return took
