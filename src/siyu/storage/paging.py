"""Keyset pagination over time-sortable ids, newest first (every list endpoint uses this)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from siyu.core.pagination import Page, check_limit, decode_cursor, encode_cursor

Out = TypeVar("Out")


def newest_first(
    session: Session,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[str],
    *,
    cursor: str | None,
    limit: int,
    convert: Callable[[Any], Out],
) -> Page[Out]:
    """Run ``stmt`` one page at a time, newest id first. A select of one mapped class hands
    ``convert`` the object; a select of several columns hands it the row (the class first)."""
    check_limit(limit)
    after = decode_cursor(cursor)
    if after:
        stmt = stmt.where(id_column < after)
    result = session.execute(stmt.order_by(id_column.desc()).limit(limit + 1))
    single = len(stmt.column_descriptions) == 1
    rows: list[Any] = list(result.scalars()) if single else list(result.all())
    items = rows[:limit]
    last = (items[-1] if single else items[-1][0]) if items else None
    next_cursor = encode_cursor(last.id) if len(rows) > limit and last is not None else None
    return Page(items=[convert(r) for r in items], next_cursor=next_cursor)
