"""Group timestamps by calendar day in a workspace's time zone, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal_column
from sqlalchemy.orm import Session


def local_day(session: Session, column: Any, timezone: str) -> Any:
    """A SQL expression giving the local calendar day (as text YYYY-MM-DD) of ``column``."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone(timezone, column), literal_column("'YYYY-MM-DD'"))
    # SQLite stores naive UTC; time zones without DST (Asia/Shanghai) are a fixed offset. For
    # zones with DST the offset of "now" is used, which is exact except around the switch.
    offset = datetime.now(UTC).astimezone(ZoneInfo(timezone)).utcoffset()
    seconds = int(offset.total_seconds()) if offset else 0
    return func.strftime("%Y-%m-%d", column, f"{seconds:+d} seconds")


def parse_day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
