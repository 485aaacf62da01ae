"""Cron expressions (five fields) evaluated in a time zone, returning UTC instants."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from siyu.core.clock import ensure_utc
from siyu.jobs.errors import InvalidCronError


def validate_cron(expression: str, timezone: str) -> None:
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise InvalidCronError(
            f"{expression!r} is not a five-field cron expression (minute hour day month weekday)",
            details=[{"loc": ["cron"], "msg": "invalid cron expression"}],
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidCronError(
            f"unknown time zone {timezone!r}", details=[{"loc": ["timezone"], "msg": "unknown"}]
        ) from exc


def next_fire(expression: str, timezone: str, after: datetime) -> datetime:
    """The first firing strictly after ``after``, computed on the wall clock of ``timezone``."""
    local = ensure_utc(after).astimezone(ZoneInfo(timezone))
    fire = croniter(expression, local).get_next(datetime)
    return ensure_utc(fire)
