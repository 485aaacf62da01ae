"""Keyset pagination over time-sortable ids, newest first (every list endpoint uses this)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from siyu.core.pagination import Page, check_limit, decode_cursor, page_from_rows

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
    """Run ``stmt`` (a select of one mapped class) one page at a time, newest id first."""
    check_limit(limit)
    after = decode_cursor(cursor)
    if after:
        stmt = stmt.where(id_column < after)
    rows = list(session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)))
    page = page_from_rows(rows, limit)
    return Page(items=[convert(r) for r in page.items], next_cursor=page.next_cursor)
