"""Statements joined to a long list of keys (a million people to send to, say), run through the
database driver.

The keys travel as one parameter — a JSON array read by ``json_each`` on SQLite; on PostgreSQL
one text of the keys joined by a character none of them holds, split by the server (a text
array would have the driver quote each key, a second and a half for a million) — and become
the relation ``keys(key, n)`` (``n`` orders the keys as they were given), which the statement
joins to its tables. The database then does the joins, where a lookup per key costs a
microsecond, and only the rows wanted come back: no temporary table, no thousands of bound parameters.

A statement is written once for both databases, with ``:name`` parameters (``:w`` is the
session's workspace) and ``{indexed_by:<index>}`` where SQLite must be told which index a join
goes through (its planner, misled by statistics taken while a table was small, would otherwise
scan), with ``CROSS JOIN … ON`` keeping ``keys`` the outer loop there; PostgreSQL drops the hint
and takes the join as a plain ``JOIN``.

Where a table is reached by an index that does not begin with ``workspace_id`` (a primary key,
``identities.profile_id``), its workspace check is written ``{workspace:<alias>}``. PostgreSQL
sees it in a form no index can serve: its planner, trusting statistics taken before the
workspace's rows arrived (a large import the autovacuum has not analysed yet), would otherwise
take the workspace to hold one row and loop over all of its rows once per key; this way each
key's own lookup finds its rows and the check is made on those.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from siyu.core.clock import ensure_utc
from siyu.storage import jsontext
from siyu.storage.bulk import pg_cursor
from siyu.storage.scoping import require_workspace

_HINT = re.compile(r"\{indexed_by:(\w+)\}")
_WORKSPACE = re.compile(r"\{workspace:(\w+)\}")
_PARAM = re.compile(r"(?<![:\w]):(\w+)")

_KEYS = {
    "sqlite": "WITH keys(key, n) AS (SELECT value, key FROM json_each(:keys)) ",
    "postgresql": "WITH keys(key, n) AS (SELECT * FROM unnest({keys}) WITH ORDINALITY) ",
}
_SEPARATOR = "\x1f"  # the unit separator, chr(31)
_JOINED = "string_to_array(CAST(:keys AS text), chr(31))"
_ARRAY = "CAST(:keys AS text[])"  # for keys that are empty or hold the separator


def statement_for(sql: str, dialect: str, joined: bool = True) -> str:
    """The statement as ``dialect``'s driver takes it (on PostgreSQL, with the keys ``joined``
    into one text or as an array)."""
    if dialect == "sqlite":
        return _KEYS[dialect] + _WORKSPACE.sub(r"\1.workspace_id = :w", _HINT.sub(r"INDEXED BY \1", sql))
    sql = _WORKSPACE.sub(r"\1.workspace_id || '' = :w", _HINT.sub("", sql))
    keys = _KEYS[dialect].format(keys=_JOINED if joined else _ARRAY)
    return _PARAM.sub(r"%(\1)s", keys + sql).replace("CROSS JOIN", "JOIN")


def _param(value: Any, dialect: str) -> Any:
    """A moment as the store keeps it: SQLite compares its naive UTC text."""
    if isinstance(value, datetime):
        aware = ensure_utc(value)
        return aware.replace(tzinfo=None).isoformat(" ", "microseconds") if dialect == "sqlite" else aware
    return value


def keyed_rows(
    session: Session, sql: str, keys: Sequence[str], params: Mapping[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (which reads the relation ``keys(key, n)``) for these keys, as tuples
    of what the driver returns."""
    if not keys:
        return []
    workspace_id = require_workspace(session)
    session.flush()
    connection = session.connection()
    dialect = connection.dialect.name
    values = {k: _param(v, dialect) for k, v in (params or {}).items()} | {"w": workspace_id}
    if dialect == "postgresql":
        text = _SEPARATOR.join(keys)
        joined = all(keys) and text.count(_SEPARATOR) == len(keys) - 1
        with pg_cursor(connection) as cur:
            cur.execute(statement_for(sql, dialect, joined), values | {"keys": text if joined else list(keys)})
            return list(cur.fetchall())
    driver: Any = connection.connection.driver_connection
    statement = statement_for(sql, dialect)
    return list(driver.execute(statement, values | {"keys": jsontext.dumps(list(keys))}).fetchall())


def stored_datetime(value: Any) -> datetime:
    """A timestamp column as ``keyed_rows`` hands it back: text on SQLite (UTC, as stored), an
    aware datetime on PostgreSQL; UTC-aware either way."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return ensure_utc(value)
