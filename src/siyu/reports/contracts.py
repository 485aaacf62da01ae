"""Report types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class DayPoint:
    day: date
    orders: int
    paid_fen: int
    events: int


@dataclass(frozen=True)
class Dashboard:
    profiles: int
    orders: int
    events: int
    timezone: str
    trend: list[DayPoint]
