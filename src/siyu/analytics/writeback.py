"""Results back into the operational store, moving only what changed.

The batch keeps, beside its snapshots, a copy of the results the store holds (written after the
store's transaction commits, tagged with the run that wrote them). A new run compares its results
with that copy in DuckDB: rows that are new or differ are replaced, rows of people no longer
there (merged away) are deleted, the rest is left alone. When the copy is missing or belongs to
another run than the store's last, every row is replaced. All in the caller's transaction, so a
failure leaves the previous results as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import delete
from sqlalchemy.orm import Session

from siyu.analytics.preferences import COLUMNS as PREFERENCES
from siyu.analytics.snapshots import NUMBERING_KEY, naive_utc
from siyu.analytics.tables import ProfileClv, ProfileLeadScore, ProfileLifecycle, ProfilePreferences, ProfileRfm
from siyu.storage.arrow_transfer import read_arrow
from siyu.storage.bulk import append_rows, delete_rows

RFM_COLUMNS = (
    "profile_id",
    "last_purchase_at",
    "frequency",
    "monetary_fen",
    "r_score",
    "f_score",
    "m_score",
    "rfm_group",
)
LIFECYCLE_COLUMNS = ("profile_id", "stage", "previous_stage", "since")
CLV_COLUMNS = ("profile_id", "p_alive", "expected_purchases", "expected_value_fen")
LEAD_COLUMNS = ("profile_id", "score", "grade")
PREFERENCE_COLUMNS = PREFERENCES
RUN_KEY = b"siyu.run_id"
# The person's code beside their id in a kept copy (of the numbering its metadata names).
CODE_COLUMN = "profile_code"


@dataclass(frozen=True)
class Written:
    replaced: int
    deleted: int
    full: bool


def held_results(path: Path, last_run_id: str | None) -> pa.Table | None:
    """The copy of what the store holds, if it is the one ``last_run_id`` wrote."""
    if last_run_id is None or not path.exists():
        return None
    table = pq.read_table(path)
    if (table.schema.metadata or {}).get(RUN_KEY) != last_run_id.encode():
        return None
    return table


@dataclass(frozen=True)
class StageChanges:
    """What a lifecycle run changed: ``rows`` is every person's row as the store now holds it,
    ``moved`` the people whose stage changed (profile_id, stage, previous_stage, since)."""

    rows: pa.Table
    moved: pa.Table
    deleted: int


def write_lifecycle(
    scoped: Session, stages: pa.Table, held: pa.Table | None, as_of: datetime, run_id: str
) -> StageChanges:
    """Make the store's lifecycle rows ``stages`` (profile_id, stage, and the person's code
    ``profile_code`` if known, which the rows returned keep): a person whose stage changed gets
    ``since`` = ``as_of`` and their old stage as ``previous_stage``; the others keep theirs.
    Without the copy of what the store holds, the store is read instead (so no change is missed
    or invented)."""
    if held is None:
        held = read_arrow(scoped, ProfileLifecycle, LIFECYCLE_COLUMNS)
    held = naive_utc(held)
    coded = CODE_COLUMN in stages.column_names
    con = duckdb.connect()
    try:
        con.register("new", stages.select(["profile_id", "stage", *([CODE_COLUMN] if coded else [])]))
        con.register("old", held.select(list(LIFECYCLE_COLUMNS)))
        rows = con.sql(
            f"""
            SELECT n.profile_id, n.stage,
                   CASE WHEN o.stage IS NOT DISTINCT FROM n.stage THEN o.previous_stage ELSE o.stage END
                       AS previous_stage,
                   CASE WHEN o.stage IS NOT DISTINCT FROM n.stage THEN o.since ELSE $as_of END AS since,
                   o.stage IS DISTINCT FROM n.stage AS moved{", n." + CODE_COLUMN if coded else ""}
            FROM new n LEFT JOIN old o USING (profile_id)
            """,
            params={"as_of": as_of.replace(tzinfo=None)},
        ).to_arrow_table()
        gone = con.sql("SELECT profile_id FROM old ANTI JOIN new USING (profile_id)").to_arrow_table()
    finally:
        con.close()
    moved = rows.filter(rows.column("moved")).select(list(LIFECYCLE_COLUMNS))
    leaving = moved.column("profile_id").to_pylist() + gone.column("profile_id").to_pylist()
    delete_rows(scoped, ProfileLifecycle, "profile_id", leaving)
    if moved.num_rows:
        columns = [moved.column(name).to_pylist() for name in LIFECYCLE_COLUMNS]
        values = [(*row, run_id) for row in zip(*columns, strict=True)]
        append_rows(scoped, ProfileLifecycle, (*LIFECYCLE_COLUMNS, "run_id"), values, on_conflict=("profile_id",))
    kept = [*LIFECYCLE_COLUMNS, *([CODE_COLUMN] if coded else [])]
    return StageChanges(rows.select(kept), moved, gone.num_rows)


def write_rfm(scoped: Session, results: pa.Table, held: pa.Table | None, run_id: str) -> Written:
    """Make the store's RFM rows ``results`` (columns RFM_COLUMNS), given ``held``, what it holds."""
    return _write_changed(scoped, ProfileRfm, RFM_COLUMNS, results, held, run_id)


def write_clv(scoped: Session, results: pa.Table, held: pa.Table | None, run_id: str) -> Written:
    """Make the store's CLV rows ``results`` (columns CLV_COLUMNS), given ``held``, what it holds."""
    return _write_changed(scoped, ProfileClv, CLV_COLUMNS, results, held, run_id)


def write_preferences(scoped: Session, results: pa.Table, held: pa.Table | None, run_id: str) -> Written:
    """Make the store's preference rows ``results`` (PREFERENCE_COLUMNS), given ``held``."""
    return _write_changed(scoped, ProfilePreferences, PREFERENCE_COLUMNS, results, held, run_id)


def write_leads(scoped: Session, results: pa.Table, held: pa.Table | None, run_id: str) -> Written:
    """Make the store's lead scores ``results`` (LEAD_COLUMNS), given ``held``."""
    return _write_changed(scoped, ProfileLeadScore, LEAD_COLUMNS, results, held, run_id)


Results = type[ProfileRfm] | type[ProfileClv] | type[ProfilePreferences] | type[ProfileLeadScore]


def _write_changed(
    scoped: Session,
    model: Results,
    columns: tuple[str, ...],
    results: pa.Table,
    held: pa.Table | None,
    run_id: str,
) -> Written:
    results = results.select(list(columns))
    if held is None:
        deleted = scoped.execute(delete(model)).rowcount  # type: ignore[attr-defined]
        _insert(scoped, model, columns, results, run_id)
        return Written(results.num_rows, int(deleted or 0), True)
    con = duckdb.connect()
    try:
        con.register("new", results)
        con.register("old", held.select(list(columns)))
        changed = con.sql("SELECT * FROM new EXCEPT ALL SELECT * FROM old").to_arrow_table()
        gone = con.sql("SELECT profile_id FROM old ANTI JOIN new USING (profile_id)").to_arrow_table()
    finally:
        con.close()
    ids = changed.column("profile_id").to_pylist()
    delete_rows(scoped, model, "profile_id", ids + gone.column("profile_id").to_pylist())
    _insert(scoped, model, columns, changed, run_id)
    return Written(changed.num_rows, gone.num_rows, False)


def keep_results(path: Path, results: pa.Table, run_id: str, numbering: str | None = None) -> None:
    """Keep the copy of what the store now holds (after its transaction committed). ``numbering``:
    which numbering of the people its ``profile_code`` column is (see ``snapshots``), if any."""
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {RUN_KEY: run_id.encode(), **({NUMBERING_KEY: numbering.encode()} if numbering else {})}
    partial = path.with_suffix(".parquet.partial")
    pq.write_table(results.replace_schema_metadata(metadata), partial)
    partial.replace(path)


def _insert(scoped: Session, model: Results, names: tuple[str, ...], rows: pa.Table, run_id: str) -> None:
    if rows.num_rows == 0:
        return
    columns = [rows.column(name).to_pylist() for name in names]
    values = [(*row, run_id) for row in zip(*columns, strict=True)]
    append_rows(scoped, model, (*names, "run_id"), values, on_conflict=("profile_id",))
