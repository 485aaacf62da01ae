"""Append rows to a workspace table through the database driver, for the ingest hot path.

The ORM costs tens of microseconds per row; the event log takes tens of thousands of rows a
second. Rows here are plain tuples, stamped with the session's workspace (so tenancy still holds:
a caller cannot write into another workspace), values converted the way the mapped types store
them. SQLite gets ``executemany``; PostgreSQL gets one statement whose parameter is the rows as
one JSON array of arrays (``jsonb_array_elements``, each value cast to its column's type: encoded
by orjson, that costs the driver about half what a typed array per column does, and a batch of
events a fifth less of PostgreSQL's time than ``COPY``), or for very many rows ``COPY`` into a
temporary table and one ``INSERT … SELECT``. Both skip rows that collide with ``on_conflict``
and say how many were new. Updates send a typed array per column (``unnest``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Boolean, Connection, Table
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.orm import Session

from siyu.core.clock import ensure_utc
from siyu.storage import jsontext
from siyu.storage.base import UTCDateTime, WorkspaceScoped
from siyu.storage.scoping import require_workspace

Convert = Callable[[Any], Any]
PG_ROWS_PER_STATEMENT = 5000  # up to this many rows, one INSERT of JSON rows; beyond, COPY through a staging table


def _json(value: Any) -> str | None:
    if value is None or type(value) is jsontext.Encoded:
        return value
    return jsontext.dumps(value)


class _SqliteDatetime:
    """SQLAlchemy's storage format for SQLite: naive UTC with microseconds. Rows of one batch
    mostly share a timestamp (the time received), so the last conversion is remembered."""

    def __init__(self) -> None:
        self._last: tuple[datetime | None, str | None] = (None, None)

    def __call__(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        last, text = self._last
        if value is last:
            return text
        text = ensure_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")
        self._last = (value, text)
        return text


def _pg_datetime(value: datetime | None) -> datetime | None:
    return None if value is None else ensure_utc(value)


def _pg_fragment(value: Any) -> orjson.Fragment | None:
    """A JSON column's value, embedded as it is in the rows' JSON."""
    if value is None:
        return None
    return orjson.Fragment(str(value) if type(value) is jsontext.Encoded else jsontext.dumps(value))


@functools.cache
def _pg_values(table: Table, columns: tuple[str, ...]) -> str:
    """The select list taking ``columns`` from ``r``, a row as a JSON array: each value cast to
    its column's type (JSON columns as they are; a JSON null is SQL NULL, as ``_json`` gives)."""
    dialect = PGDialect()  # type: ignore[no-untyped-call]
    out = []
    for i, name in enumerate(columns):
        column_type = table.c[name].type
        value = (
            f"NULLIF(r->{i}, 'null'::jsonb)"
            if isinstance(column_type, JSON)
            else f"(r->>{i})::{column_type.compile(dialect=dialect)}"
        )
        out.append(value)
    return ", ".join(out)


def _pg_rows(rows: Sequence[Sequence[Any]], width: int, convert: list[tuple[int, Convert]]) -> str:
    return orjson.dumps(list(_driver_rows(rows, width, convert))).decode()


@functools.cache
def _converters(
    table: Table, columns: tuple[str, ...], dialect: str, *, json_rows: bool = False
) -> list[tuple[int, Convert]]:
    """How values become driver values, as the mapped types would store them: (position,
    conversion) for the columns that need one (``json_rows``: for rows sent to PostgreSQL as one
    JSON document). Kept per table and columns: converters hold no state but the last timestamp
    they converted."""
    out: list[tuple[int, Convert]] = []
    for position, name in enumerate(columns):
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            out.append((position, _pg_fragment if json_rows else _json))
        elif isinstance(column_type, UTCDateTime):
            out.append((position, _SqliteDatetime() if dialect == "sqlite" else _pg_datetime))
    return out


def _driver_rows(
    rows: Sequence[Sequence[Any]], width: int, convert: list[tuple[int, Convert]], before: tuple[Any, ...] = ()
) -> Iterator[list[Any]]:
    """Each row converted, after the values in ``before`` (rows must have ``width`` values)."""
    shift = len(before)
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row has {len(row)} values for {width} columns")
        values = [*before, *row]
        for position, f in convert:
            values[position + shift] = f(values[position + shift])
        yield values


@functools.cache
def _pg_arrays(table: Table, columns: tuple[str, ...]) -> str:
    """``unnest``'s arguments for ``columns``: one typed array parameter each, sent in binary
    (text arrays would have every element quoted and escaped)."""
    dialect = PGDialect()  # type: ignore[no-untyped-call]
    return ", ".join(f"%b::{table.c[name].type.compile(dialect=dialect)}[]" for name in columns)


def pg_cursor(connection: Connection) -> AbstractContextManager[Any]:
    """The connection's cursor for these statements, kept as long as the connection (and left
    open here): a cursor learns once how to send and read each type, which costs a new cursor
    about a third of a statement."""
    info = connection.connection.info
    cur = info.get("siyu_bulk_cursor")
    if cur is None or cur.closed:
        driver: Any = connection.connection.driver_connection
        cur = info["siyu_bulk_cursor"] = driver.cursor()
    return nullcontext(cur)


def _by_column(rows: Sequence[Sequence[Any]], width: int, convert: list[tuple[int, Convert]]) -> list[list[Any]]:
    """The rows' values column by column, converted (rows must have ``width`` values)."""
    if any(n != width for n in set(map(len, rows))):
        raise ValueError(f"a row has {next(len(r) for r in rows if len(r) != width)} values for {width} columns")
    columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
    for position, f in convert:
        columns[position] = list(map(f, columns[position]))
    return columns


def _shifted(convert: list[tuple[int, Convert]]) -> list[tuple[int, Convert]]:
    return [(position + 1, f) for position, f in convert]


def append_rows(
    session: Session,
    model: type[WorkspaceScoped],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    on_conflict: Sequence[str],
) -> int:
    """Insert ``rows`` (values in ``columns`` order, without ``workspace_id``) into the session's
    workspace; rows that collide on the ``on_conflict`` columns are skipped. Returns how many
    were inserted."""
    table = cast(Table, model.__table__)  # type: ignore[attr-defined]
    if "workspace_id" in columns:
        raise ValueError(f"{table.name}: append_rows stamps workspace_id itself")
    unknown = set(columns) - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name} has no columns {sorted(unknown)}")
    if not rows:
        return 0
    workspace_id = require_workspace(session)
    session.flush()  # rows may point at objects the session has not written yet
    names = ("workspace_id", *columns)
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    conflict = ", ".join(on_conflict)
    convert = _converters(table, tuple(columns), connection.dialect.name)
    if connection.dialect.name == "postgresql":
        with pg_cursor(connection) as cur:
            if len(rows) <= PG_ROWS_PER_STATEMENT:
                # One statement of two parameters, however many rows: PostgreSQL plans it once.
                cur.execute(
                    f"INSERT INTO {table.name} ({', '.join(names)}) "
                    f"SELECT %s, {_pg_values(table, tuple(columns))} FROM jsonb_array_elements(%s::jsonb) AS r "
                    f"ON CONFLICT ({conflict}) DO NOTHING",
                    (
                        workspace_id,
                        _pg_rows(rows, len(columns), _converters(table, tuple(columns), "postgresql", json_rows=True)),
                    ),
                )
                return int(cur.rowcount)
            cols = ", ".join(names)
            staging = f"{table.name}_incoming"
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table.name} INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS"
            )
            cur.execute(f"TRUNCATE {staging}")
            with cur.copy(f"COPY {staging} ({cols}) FROM STDIN") as copy:
                for values in _driver_rows(rows, len(columns), convert, (workspace_id,)):
                    copy.write_row(values)
            cur.execute(
                f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {staging} ON CONFLICT ({conflict}) DO NOTHING"
            )
            return int(cur.rowcount)
    placeholders = ", ".join("?" for _ in names)
    before = driver.total_changes
    driver.executemany(
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders}) ON CONFLICT ({conflict}) DO NOTHING",
        _driver_rows(rows, len(columns), convert, (workspace_id,)),
    )
    return int(driver.total_changes - before)


def _in_workspace(table: Table, key: str, placeholder: str) -> str:
    """PostgreSQL's check that a row found by ``key`` is the workspace's. Where an index begins
    with ``key`` (the primary key, say), the check is written so no index can serve it: statistics
    taken before the workspace's rows arrived make the planner take the workspace to hold a few
    rows, and it would read all of them through a ``workspace_id`` index (half a second per
    2,000 messages among 400,000) instead of finding each by its key."""
    column = f"{table.name}.workspace_id"
    return f"{column} || '' = {placeholder}" if _index_begins_with(table, key) else f"{column} = {placeholder}"


def _index_begins_with(table: Table, column: str) -> bool:
    firsts = [next(iter(ix.columns)).name for ix in table.indexes if len(ix.columns)]
    primary = [c.name for c in table.primary_key.columns]
    return column in firsts or primary[:1] == [column]


def update_rows(
    session: Session,
    model: type[WorkspaceScoped],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    key: str = "id",
) -> None:
    """Set ``columns`` of the rows whose ``key`` is each row's first value (then the new values, in
    ``columns`` order) — in the session's workspace only. Mapped objects of those rows already in
    the session are expired, so they are read again if used."""
    table = cast(Table, model.__table__)  # type: ignore[attr-defined]
    if "workspace_id" in columns or key in columns:
        raise ValueError(f"{table.name}: update_rows sets neither workspace_id nor the key")
    if not rows:
        return
    workspace_id = require_workspace(session)
    session.flush()
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    convert = _converters(table, tuple(columns), connection.dialect.name)
    if connection.dialect.name == "postgresql":
        # One statement for all rows; when a key repeats, its last row wins (as one by one).
        last = list({row[0]: row for row in rows}.values())
        values = _by_column(last, len(columns) + 1, _shifted(convert))
        names = ", ".join(f"v{i}" for i in range(len(columns) + 1))
        assignments = ", ".join(f"{c} = v.v{i + 1}" for i, c in enumerate(columns))
        with pg_cursor(connection) as cur:
            # Typed arrays (``unnest``), not JSON rows: PostgreSQL then expects a few rows, and
            # finds each by its key; for JSON it expects a hundred, and may scan the table.
            cur.execute(
                f"UPDATE {table.name} SET {assignments} FROM unnest({_pg_arrays(table, (key, *columns))}) "
                f"AS v({names}) WHERE {_in_workspace(table, key, '%b')} AND {table.name}.{key} = v.v0",
                [*values, workspace_id],
            )
    else:
        assignments = ", ".join(f"{c} = ?" for c in columns)
        driver.executemany(
            f"UPDATE {table.name} SET {assignments} WHERE workspace_id = ? AND {key} = ?",
            [
                [*values[1:], workspace_id, values[0]]
                for values in _driver_rows(rows, len(columns) + 1, _shifted(convert))
            ],
        )
    keys = {row[0] for row in rows}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model) and getattr(obj, key, None) in keys:
            session.expire(obj)


DELETE_CHUNK = 50_000


def delete_rows(session: Session, model: type[WorkspaceScoped], key: str, values: Iterable[Any]) -> int:
    """Delete the session's workspace's rows whose ``key`` is one of ``values``; returns how many
    went. One statement per 50,000 values, each value list one parameter."""
    table = cast(Table, model.__table__)  # type: ignore[attr-defined]
    if key not in table.c:
        raise ValueError(f"{table.name} has no column {key!r}")
    wanted = list(dict.fromkeys(values))
    if not wanted:
        return 0
    workspace_id = require_workspace(session)
    session.flush()
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    deleted = 0
    for start in range(0, len(wanted), DELETE_CHUNK):
        chunk = wanted[start : start + DELETE_CHUNK]
        if connection.dialect.name == "postgresql":
            with pg_cursor(connection) as cur:
                cur.execute(
                    f"DELETE FROM {table.name} WHERE {_in_workspace(table, key, '%s')} AND {key} = ANY(%s)",
                    (workspace_id, chunk),
                )
                deleted += int(cur.rowcount)
        else:
            cursor = driver.execute(
                f"DELETE FROM {table.name} WHERE workspace_id = ? AND {key} IN (SELECT value FROM json_each(?))",
                (workspace_id, jsontext.dumps(chunk)),
            )
            deleted += int(cursor.rowcount)
    gone = set(wanted)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model) and getattr(obj, key, None) in gone:
            session.expunge(obj)
    return deleted


def _reader(column: Any, dialect: str) -> Convert | None:
    """How a driver value read back becomes what the mapped type would give (SQLite only:
    psycopg already returns booleans, parsed JSON and aware datetimes)."""
    if dialect != "sqlite":
        return None
    column_type = column.type
    if isinstance(column_type, JSON):
        return lambda v: None if v is None else jsontext.loads(v)
    if isinstance(column_type, Boolean):
        return bool if not column.nullable else lambda v: None if v is None else bool(v)
    if isinstance(column_type, UTCDateTime):
        return lambda v: None if v is None else datetime.fromisoformat(v).replace(tzinfo=UTC)
    return None


_SQLITE_LOOKUP_INDEX: dict[tuple[str, str, str], tuple[str, bool] | None] = {}


def _sqlite_lookup_index(driver: Any, database: str, table: str, key: str) -> tuple[str, bool] | None:
    """The index a lookup by ``key`` within a workspace uses on SQLite, and whether it leads with
    ``workspace_id`` (else with the key); None when no index fits.

    Named in the query (INDEXED BY): statistics taken while a table was small tell SQLite's
    planner that scanning it is cheapest, and it would go on scanning every ingest transaction
    long after the table has grown, until the statistics are next refreshed. Found once per
    database file.
    """
    if (database, table, key) not in _SQLITE_LOOKUP_INDEX:
        found: tuple[str, bool] | None = None
        for _seq, name, *_rest in driver.execute(f"PRAGMA index_list({table})").fetchall():
            columns = [row[2] for row in driver.execute(f"PRAGMA index_info({name})").fetchall()]
            if columns[:2] == ["workspace_id", key]:
                found = (name, True)
                break
            if columns[:1] == [key] and found is None:
                found = (name, False)
        _SQLITE_LOOKUP_INDEX[(database, table, key)] = found
    return _SQLITE_LOOKUP_INDEX[(database, table, key)]


@functools.cache
def _fetch_plan(
    table: Table, columns: tuple[str, ...], keys: tuple[str, ...], dialect: str
) -> tuple[str, list[tuple[int, Convert]]]:
    """For a lookup: PostgreSQL's statement, and how values read back are converted."""
    unknown = {*columns, *keys} - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name} has no columns {sorted(unknown)}")
    # One index probe per value, each a join with the list of values: the probe by key is then
    # the plan at any table size. Tested against the list as a whole (``key = ANY(%b)``), a plan
    # made while a table was small reads the workspace's rows through another of its indexes and
    # filters them, and PostgreSQL keeps such a plan (see ``make_engine``'s ``generic_plans``).
    # With several keys a row is read for the first key that finds it.
    selected = ", ".join(f"t.{c}" for c in columns)
    branches = []
    for i, k in enumerate(keys):
        earlier = "".join(f" AND ({e} IS NULL OR {e} <> ALL(%(k{j})b))" for j, e in enumerate(keys[:i]))
        branches.append(
            f"SELECT {selected} FROM unnest(%(k{i})b) AS k(v) CROSS JOIN LATERAL "
            f"(SELECT {', '.join(columns)} FROM {table.name} WHERE workspace_id = %(w)b AND {k} = k.v{earlier} "
            "OFFSET 0) AS t"
        )
    sql = " UNION ALL ".join(branches)
    readers = [(i, f) for i, name in enumerate(columns) if (f := _reader(table.c[name], dialect)) is not None]
    return sql, readers


def fetch_rows(
    session: Session,
    model: type[WorkspaceScoped],
    columns: Sequence[str],
    key: str | tuple[str, ...],
    values: Iterable[Any],
) -> list[tuple[Any, ...]]:
    """``columns`` of the session's workspace's rows whose ``key`` is one of ``values``, as tuples;
    with several keys, the rows where any of them is (each row once).

    One statement with one parameter however many values (a JSON array on SQLite, an array on
    PostgreSQL): rendering thousands of bound parameters costs more than the query. On PostgreSQL
    several keys are one statement too, so one round trip.
    """
    table = cast(Table, model.__table__)  # type: ignore[attr-defined]
    keys = (key,) if isinstance(key, str) else key
    wanted = list(dict.fromkeys(values))
    dialect = session.get_bind().dialect.name
    pg_sql, readers = _fetch_plan(table, tuple(columns), keys, dialect)
    if not wanted:
        return []
    workspace_id = require_workspace(session)
    session.flush()  # what the session holds but has not written yet must be found
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    if dialect == "postgresql":
        with pg_cursor(connection) as cur:
            cur.execute(pg_sql, {"w": workspace_id} | {f"k{i}": wanted for i in range(len(keys))})
            rows = cur.fetchall()
    else:
        rows = []
        for k in keys:
            index = _sqlite_lookup_index(driver, str(connection.engine.url), table.name, k)
            source = f"{table.name} INDEXED BY {index[0]}" if index else table.name
            # An index leading with the key takes the workspace test as a filter (``+``).
            workspace_test = "+workspace_id" if index and not index[1] else "workspace_id"
            rows += driver.execute(
                f"SELECT {', '.join(columns)} FROM {source} "
                f"WHERE {workspace_test} = ? AND {k} IN (SELECT value FROM json_each(?))",
                (workspace_id, jsontext.dumps(wanted)),
            ).fetchall()
        if len(keys) > 1:
            rows = list(dict.fromkeys(rows))
    if not readers:
        return [tuple(row) for row in rows]
    out = []
    for row in rows:
        converted = list(row)
        for i, f in readers:
            converted[i] = f(converted[i])
        out.append(tuple(converted))
    return out


def claim_statement_pg(table: str, listed: str, due_column: str, out: str) -> str:
    """PostgreSQL's claim: parameters ``w`` (the workspace), ``now``, ``n`` (how many),
    ``claimed`` (the status they take) and ``until`` (the lease's end)."""
    return (
        f"WITH due AS MATERIALIZED (SELECT id FROM {table} WHERE workspace_id = %(w)s "
        f"AND status IN ({listed}) AND {due_column} <= %(now)s ORDER BY {due_column} LIMIT %(n)s "
        f"FOR UPDATE SKIP LOCKED) UPDATE {table} SET status = %(claimed)s, attempts = attempts + 1, "
        f"{due_column} = %(until)s FROM due WHERE {table}.id = due.id RETURNING {out}"
    )


def claim_due_rows(
    session: Session,
    model: type[WorkspaceScoped],
    *,
    statuses: Sequence[str],
    due_column: str,
    now: datetime,
    limit: int,
    claimed_status: str,
    lease_until: datetime,
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Lease up to ``limit`` of the session's workspace's rows whose status is one of
    ``statuses`` and whose ``due_column`` has come, earliest first: set them to
    ``claimed_status``, ``due_column`` to ``lease_until`` and ``attempts`` one up, in one
    statement, and return their ``returning`` columns (``attempts`` as counted now).

    Through the driver: each claim moves thousands of rows, and the ORM's statement and row
    handling cost several times the database's work. ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
    lets concurrent claimers pass each other; SQLite runs it under its write lock."""
    table = cast(Table, model.__table__)  # type: ignore[attr-defined]
    unknown = {due_column, "status", "attempts", *returning} - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name} has no columns {sorted(unknown)}")
    workspace_id = require_workspace(session)
    session.flush()
    connection = session.connection()
    dialect = connection.dialect.name
    out = ", ".join(f"{table.name}.{c}" for c in returning)
    # The statuses are written into the statement, not bound: a partial index of due rows is
    # used only when the query's terms match its WHERE as written — by SQLite always, and by
    # PostgreSQL in a plan it keeps for any parameters (the statuses are the code's own words).
    if not all(re.fullmatch(r"[a-z_]+", st) for st in statuses):
        raise ValueError(f"statuses must be plain words: {statuses!r}")
    listed = ", ".join(f"'{st}'" for st in statuses)
    if dialect == "postgresql":
        sql = claim_statement_pg(table.name, listed, due_column, out)
        params = {
            "w": workspace_id,
            "now": ensure_utc(now),
            "n": limit,
            "claimed": claimed_status,
            "until": ensure_utc(lease_until),
        }
        with pg_cursor(connection) as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
    else:
        stamp = _SqliteDatetime()
        sql = (
            f"WITH due AS MATERIALIZED (SELECT id FROM {table.name} WHERE workspace_id = ? "
            f"AND status IN ({listed}) AND {due_column} <= ? ORDER BY {due_column} LIMIT ?) "
            f"UPDATE {table.name} SET status = ?, attempts = attempts + 1, {due_column} = ? "
            f"FROM due WHERE {table.name}.id = due.id RETURNING {out}"
        )
        driver: Any = connection.connection.driver_connection
        rows = driver.execute(sql, (workspace_id, stamp(now), limit, claimed_status, stamp(lease_until))).fetchall()
    readers = [(i, f) for i, name in enumerate(returning) if (f := _reader(table.c[name], dialect)) is not None]
    if not readers:
        return [tuple(r) for r in rows]
    converted = []
    for row in rows:
        values = list(row)
        for i, f in readers:
            values[i] = f(values[i])
        converted.append(tuple(values))
    return converted
