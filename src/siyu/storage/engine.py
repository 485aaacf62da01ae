"""Engine construction for SQLite (default, WAL) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from siyu.storage import checkpoints, jsontext
from siyu.storage.checkpoints import Checkpointer
from siyu.storage.writeturn import WriteTurn

BUSY_TIMEOUT_S = 30


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, immediate: bool = True, generic_plans: bool = False, **kwargs: Any) -> Engine:
    """Create an engine. SQLite files get WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE.

    BEGIN IMMEDIATE takes SQLite's write lock when a transaction starts, so a transaction that
    reads and then writes can never fail half-way with SQLITE_BUSY under concurrent writers
    (API threads, workers). ``immediate=False`` gives read-only work a deferred BEGIN, which in
    WAL mode never waits for writers.

    ``generic_plans`` (PostgreSQL): a statement the driver has prepared is planned once for all
    values, instead of again for every execution. Only for work whose statements are keyed
    lookups and bulk writes, whose best plan does not depend on the values. Such a plan lives as
    long as its connection, so these connections never plan a sequential scan where an index
    serves: made while a table was nearly empty, a scan matching each row against a list of keys
    would be kept after the table had grown, at rows × keys comparisons per lookup.
    """
    parsed = make_url(url)
    kwargs.setdefault("json_serializer", jsontext.dumps)
    kwargs.setdefault("json_deserializer", jsontext.loads)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _configure_sqlite(engine, immediate, database)
        return engine
    if generic_plans:
        options = "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off"
        kwargs.setdefault("connect_args", {})["options"] = options
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine, immediate: bool, database: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # see siyu.storage.checkpoints
        cursor.execute(f"PRAGMA journal_size_limit={checkpoints.WAL_LIMIT_BYTES}")  # the WAL file, once restarted
        cursor.close()

    if not immediate:  # reads only: no turn to take, nothing to checkpoint
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return
    turn = WriteTurn(database or None)
    holder: list[Any] = []  # the connection holding this engine's turn, if one does
    checkpointer = Checkpointer(database, turn) if database and database != ":memory:" else None
    if checkpointer is not None:
        event.listen(engine, "engine_disposed", lambda _engine: checkpointer.stop())

    # Writers take turns (threads and processes alike) before BEGIN IMMEDIATE: a waiting writer
    # starts the moment the last one commits, instead of sleeping in SQLite's busy handler.
    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if not turn.acquire(timeout=BUSY_TIMEOUT_S):
            raise TimeoutError(f"database is busy: no write turn within {BUSY_TIMEOUT_S} s")
        holder.append(conn.connection.dbapi_connection)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _end_turn(conn.connection)
            raise

    def _end_turn(connection: Any) -> None:
        if holder and holder[0] is getattr(connection, "dbapi_connection", connection):
            holder.clear()
            turn.release()

    # The turn passes on once COMMIT (or ROLLBACK) has finished, not when it is asked for (as
    # SQLAlchemy's commit event would have it): a writer given the turn while the last one was
    # still committing would find the database locked, and SQLite's busy handler sleeps 1 ms and
    # more before it looks again.
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            _end_turn(dbapi_connection)
        if checkpointer is not None:
            checkpointer.wanted()

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            _end_turn(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]

    @event.listens_for(engine, "rollback")
    def _on_rollback(conn: Any) -> None:
        if conn.invalidated and holder:  # no ROLLBACK will be sent: the connection is gone
            holder.clear()
            turn.release()
