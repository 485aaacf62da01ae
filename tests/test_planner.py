"""Planner statistics: after a refresh, SQLite finds rows by their own index instead of scanning
the workspace; imports refresh them as they grow; the refresh runs as a scheduled task."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from siyu.commerce.tables import Order, OrderItem
from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.ingest.imports import run as import_run
from siyu.ingest.imports.presets import PRESETS
from siyu.ingest.imports.run import run_import
from siyu.jobs.registry import TaskContext, handler_for, load_task_modules
from siyu.storage.bulk import append_rows
from siyu.storage.planner import refresh_statistics
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import make_actor
from tests.test_imports import row, taobao_csv

ORDER_COLUMNS = (
    *("id", "platform", "store", "order_no", "buyer_kind", "buyer_id"),
    *("status", "total_fen", "paid_fen", "ordered_at", "ingested_at"),
)


def _items(db: Database, workspace_id: str, orders: int, per_order: int) -> None:
    now = utcnow()
    with db.transaction(Scope.workspace(workspace_id)) as s:
        ids = [new_id("ord_") for _ in range(orders)]
        append_rows(
            s,
            Order,
            ORDER_COLUMNS,
            [(i, "tmall", "", f"n{k}", "taobao_nick", f"b{k}", "paid", 100, 100, now, now) for k, i in enumerate(ids)],
            on_conflict=("id",),
        )
        append_rows(
            s,
            OrderItem,
            ("id", "order_id", "sku", "quantity", "unit_price_fen", "amount_fen"),
            [(new_id("itm_"), i, f"SKU{j}", 1, 100, 100) for i in ids for j in range(per_order)],
            on_conflict=("id",),
        )


def _plan(db: Database, sql: str) -> str:
    with db.engine.connect() as connection:
        return " ".join(str(r[3]) for r in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, ("w", "o")))


def test_after_a_refresh_sqlite_looks_items_up_by_order_not_by_workspace(db: Database) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the planner question is SQLite's")
    a = make_actor(db, "acme")
    _items(db, a.workspace_id, orders=300, per_order=3)
    query = "SELECT * FROM order_items WHERE workspace_id = ? AND order_id = ?"
    assert "ix_order_items_workspace_id" in _plan(db, query)  # no statistics: the workspace wins
    assert refresh_statistics(db.engine) < 5
    assert "ix_order_items_order_id" in _plan(db, query)


def _analyzed(db: Database, table: str) -> int:
    """How many times the table was analyzed (PostgreSQL), or its rows of statistics (SQLite)."""
    with db.engine.connect() as connection:
        if db.engine.dialect.name == "postgresql":
            sql = "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = :t"
            return int(connection.execute(text(sql), {"t": table}).scalar() or 0)
        if not connection.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar():
            return 0
        return int(connection.execute(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = :t"), {"t": table}).scalar())


def test_refresh_analyzes_the_tables_on_either_database(db: Database) -> None:
    a = make_actor(db, "acme")
    _items(db, a.workspace_id, orders=20, per_order=2)
    before = _analyzed(db, "order_items")
    refresh_statistics(db.engine)
    assert _analyzed(db, "order_items") > before


def test_event_writes_plan_a_prepared_statement_once_on_postgresql(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite plans each statement when it is prepared")
    scope = Scope.workspace(make_actor(db, "acme").workspace_id)
    with db.keyed_transaction(scope) as s:
        assert s.connection().exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_generic_plan"
    with db.transaction(scope) as s:  # everything else is planned for the values it is given
        assert s.connection().exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"


def test_event_writes_look_rows_up_by_index_even_if_planned_while_the_table_was_small(db: Database) -> None:
    """A plan made once lives as long as its connection. Made while a table is nearly empty, a
    scan would look cheapest; matched against a list of values it costs rows × values once the
    table has grown (a group of a thousand events took half a second per lookup)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite plans each statement when it is prepared")
    scope = Scope.workspace(make_actor(db, "acme").workspace_id)
    with db.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE identities")  # statistics of a table just created
    lookup = "SELECT id, profile_id FROM identities WHERE workspace_id = $1 AND value = ANY($2)"

    def plan(scans: str | None) -> str:
        with db.keyed_transaction(scope) as s:
            connection = s.connection()
            if scans:
                connection.exec_driver_sql(f"SET LOCAL enable_seqscan = {scans}")
            connection.exec_driver_sql(f"PREPARE lookup(varchar, varchar[]) AS {lookup}")
            explained = connection.exec_driver_sql("EXPLAIN EXECUTE lookup('w', '{a,b}')")
            connection.exec_driver_sql("DEALLOCATE lookup")
            return " ".join(r[0] for r in explained)

    assert "Seq Scan" in plan("on")  # the trap
    assert "Index" in plan(None) and "Seq Scan" not in plan(None)  # as the writer's connections run


def test_a_growing_import_refreshes_statistics(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = make_actor(db, "acme")
    monkeypatch.setattr(import_run, "CHUNK_ROWS", 2)
    monkeypatch.setattr(import_run, "REFRESH_FIRST_AT", 2)
    path = taobao_csv(tmp_path, [row(f"19306798581706{n:02d}", f"买家{n}", "交易成功") for n in range(25)])
    calls: list[int] = []
    report = run_import(
        lambda: db.transaction(Scope.workspace(a.workspace_id)),
        path,
        PRESETS["taobao"],
        refresh_statistics=lambda: calls.append(1),
    )
    assert report.accepted == 25 and len(calls) == 2  # after 2 rows and after 20


def test_the_scheduled_task_refreshes(db: Database) -> None:
    a = make_actor(db, "acme")
    _items(db, a.workspace_id, orders=5, per_order=1)
    before = _analyzed(db, "orders")
    load_task_modules()
    handler_for("storage.refresh_statistics")(TaskContext(job_id="job_x", workspace_id=None, attempt=1, db=db), {})
    assert _analyzed(db, "orders") > before
