"""Ingest facade: event reads for reports, bulk writes for loaders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from siyu.ingest.tables import Event
from siyu.storage.daybucket import local_day, parse_day
from siyu.storage.scoping import require_workspace


@dataclass(frozen=True)
class DailyEvents:
    day: date
    events: int


def count_events(scoped: Session) -> int:
    return int(scoped.scalar(select(func.count()).select_from(Event)) or 0)


def daily_events(scoped: Session, *, since: datetime, timezone: str) -> list[DailyEvents]:
    day = local_day(scoped, Event.timestamp, timezone).label("day")
    rows = scoped.execute(select(day, func.count()).where(Event.timestamp >= since).group_by(day).order_by(day)).all()
    return [DailyEvents(parse_day(d), int(n)) for d, n in rows]


def insert_event_rows(scoped: Session, rows: Sequence[dict[str, Any]]) -> None:
    workspace_id = require_workspace(scoped)
    if rows:
        scoped.execute(insert(Event), [{**r, "workspace_id": workspace_id} for r in rows])
