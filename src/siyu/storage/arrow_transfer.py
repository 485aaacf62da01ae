"""Read a workspace's rows out of the operational store as Arrow, for the batch engine.

PostgreSQL answers through ADBC, whose driver builds Arrow columns in C from PostgreSQL's binary
protocol on a connection of its own. SQLite answers through the session's own connection in
batches of rows, each column converted to its Arrow type in one call. Either way the columns have
the types their models give them (strings, int64, bool, UTC timestamps; JSON as its text), so
the batch engine sees the same table whichever store it came from.

Rows are those of the session's workspace only, optionally only those changed after a moment
(``changed_since``, by the table's ``changed_at``, which the database itself sets).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, cast

import pyarrow as pa
from sqlalchemy import JSON, BigInteger, Boolean, Integer, Table
from sqlalchemy.orm import Session

from siyu.core.clock import ensure_utc
from siyu.storage.base import UTCDateTime, WorkspaceScoped
from siyu.storage.scoping import require_workspace

SQLITE_BATCH_ROWS = 100_000
TIMESTAMP = pa.timestamp("us", tz="UTC")


def arrow_schema(model: type[WorkspaceScoped], columns: Sequence[str]) -> pa.Schema:
    """The Arrow types of ``columns`` as the batch engine sees them."""
    table = _table(model)
    fields = []
    for name in columns:
        if name not in table.c:
            raise ValueError(f"{table.name} has no column {name!r}")
        column_type = table.c[name].type
        if isinstance(column_type, UTCDateTime):
            arrow_type = TIMESTAMP
        elif isinstance(column_type, BigInteger | Integer):
            arrow_type = pa.int64()
        elif isinstance(column_type, Boolean):
            arrow_type = pa.bool_()
        else:  # strings, and JSON as its text
            arrow_type = pa.string()
        fields.append(pa.field(name, arrow_type))
    return pa.schema(fields)


def read_arrow(
    session: Session,
    model: type[WorkspaceScoped],
    columns: Sequence[str],
    *,
    changed_since: datetime | None = None,
    changed_column: str = "changed_at",
    where_in: tuple[str, Sequence[Any]] | None = None,
    after: tuple[str, str] | None = None,
) -> pa.Table:
    """``columns`` of the session's workspace's rows of ``model`` as an Arrow table.

    ``changed_since``: only rows whose ``changed_column`` (``changed_at``) is later. ``where_in``: only rows whose
    column (first) is one of the values (second). ``after``: only rows whose column (an indexed
    one: the primary key) is above the value.
    """
    table = _table(model)
    schema = arrow_schema(model, columns)
    if changed_since is not None and changed_column not in table.c:
        raise ValueError(f"{table.name} has no {changed_column}: it cannot be read by change")
    changed = (changed_column, changed_since) if changed_since is not None else None
    for condition in (where_in, after):
        if condition is not None and condition[0] not in table.c:
            raise ValueError(f"{table.name} has no column {condition[0]!r}")
    workspace_id = require_workspace(session)
    session.flush()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _read_postgres(session, table, schema, workspace_id, changed, where_in, after)
    driver = connection.connection.driver_connection
    return _read_sqlite(driver, table, schema, workspace_id, changed, where_in, after)


def _table(model: type[WorkspaceScoped]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def _select(table: Table, schema: pa.Schema, postgres: bool) -> list[str]:
    out = []
    for field in schema:
        json_text = isinstance(table.c[field.name].type, JSON)
        out.append(f"{field.name}::text" if postgres and json_text else field.name)
    return out


def _read_postgres(
    session: Session,
    table: Table,
    schema: pa.Schema,
    workspace_id: str,
    changed: tuple[str, datetime] | None,
    where_in: tuple[str, Sequence[Any]] | None,
    after: tuple[str, str] | None,
) -> pa.Table:
    import adbc_driver_postgresql.dbapi

    sql = f"SELECT {', '.join(_select(table, schema, True))} FROM {table.name} WHERE workspace_id = $1"
    params: list[Any] = [workspace_id]
    if changed is not None:
        params.append(ensure_utc(changed[1]))
        sql += f" AND {changed[0]} > ${len(params)}"
    if where_in is not None:
        params.append(list(where_in[1]))
        sql += f" AND {where_in[0]} = ANY(${len(params)}::text[])"
    if after is not None:
        params.append(after[1])
        sql += f" AND {after[0]} > ${len(params)}"
    url = session.get_bind().engine.url.set(drivername="postgresql")
    dsn = url.render_as_string(hide_password=False)
    with adbc_driver_postgresql.dbapi.connect(dsn) as adbc, adbc.cursor() as cursor:
        cursor.execute(sql, params)
        result = cursor.fetch_arrow_table()
    return pa.Table.from_arrays([result.column(i) for i in range(result.num_columns)], schema=schema)


def _read_sqlite(
    driver: Any,
    table: Table,
    schema: pa.Schema,
    workspace_id: str,
    changed: tuple[str, datetime] | None,
    where_in: tuple[str, Sequence[Any]] | None,
    after: tuple[str, str] | None,
) -> pa.Table:
    # Read by a range of ``after``'s index, the workspace tested on each row (``+``): statistics
    # taken while the table was small would have SQLite walk the whole workspace instead.
    workspace_test = "+workspace_id" if after is not None else "workspace_id"
    sql = f"SELECT {', '.join(_select(table, schema, False))} FROM {table.name} WHERE {workspace_test} = ?"
    params: list[Any] = [workspace_id]
    if changed is not None:
        # The store's own text form of a UTC moment (see ``UTCDateTime``), which sorts as time does.
        params.append(ensure_utc(changed[1]).replace(tzinfo=None).isoformat(" ", "microseconds"))
        sql += f" AND {changed[0]} > ?"
    if where_in is not None:
        from siyu.storage import jsontext

        params.append(jsontext.dumps(list(where_in[1])))
        sql += f" AND {where_in[0]} IN (SELECT value FROM json_each(?))"
    if after is not None:
        params.append(after[1])
        sql += f" AND {after[0]} > ?"
    batches = [_sqlite_batch(rows, schema) for rows in _fetch_batches(driver.execute(sql, params))]
    return pa.Table.from_batches(batches, schema=schema)


def _fetch_batches(cursor: Any) -> Iterator[list[tuple[Any, ...]]]:
    while rows := cursor.fetchmany(SQLITE_BATCH_ROWS):
        yield rows


def _sqlite_batch(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for field, values in zip(schema, zip(*rows, strict=True), strict=True):
        if field.type == TIMESTAMP:
            # Stored as naive UTC text ("2026-11-23 18:40:00.123456", or without the fraction).
            array = pa.array(values, pa.string()).cast(pa.timestamp("us")).cast(TIMESTAMP)
        elif field.type == pa.bool_():
            array = pa.array(values, pa.int8()).cast(pa.bool_())
        else:
            array = pa.array(values, field.type)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
