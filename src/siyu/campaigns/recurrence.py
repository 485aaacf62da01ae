"""When a recurring campaign comes round: every day, or on given weekdays, at a local time of
the workspace, until a last day (included) if one is given."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

EVERY = ("day", "week")
SETTINGS = {"every", "at", "weekdays", "until", "new_only"}
AT = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def recurrence_problems(recurrence: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What is wrong with the settings: (where, why) each."""
    problems = []
    unknown = set(recurrence) - SETTINGS
    if unknown:
        problems.append(("recurrence", f"{sorted(unknown)[0]!r} is not a recurrence setting"))
    every = recurrence.get("every")
    if every not in EVERY:
        problems.append(("recurrence.every", "a campaign recurs every day or every week"))
    if not isinstance(recurrence.get("at"), str) or not AT.match(recurrence["at"]):
        problems.append(("recurrence.at", "the time of day is HH:MM, 00:00 to 23:59"))
    weekdays = recurrence.get("weekdays", [])
    if every == "week" and (
        not isinstance(weekdays, list)
        or not weekdays
        or any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 7 for d in weekdays)
    ):
        problems.append(("recurrence.weekdays", "a weekly campaign names its days, 1 (Monday) to 7 (Sunday)"))
    until = recurrence.get("until")
    if until is not None:
        try:
            date.fromisoformat(str(until))
        except ValueError:
            problems.append(("recurrence.until", "the last day is a date, YYYY-MM-DD"))
    if not isinstance(recurrence.get("new_only", False), bool):
        problems.append(("recurrence.new_only", "new_only is true or false"))
    return problems


def next_occurrence(recurrence: Mapping[str, Any], after: datetime, timezone: str) -> datetime | None:
    """The first time strictly after ``after`` the campaign comes round (UTC), or None when its
    last day has passed."""
    tz = ZoneInfo(timezone)
    hour, minute = (int(x) for x in str(recurrence["at"]).split(":"))
    until = date.fromisoformat(str(recurrence["until"])) if recurrence.get("until") else None
    days = set(recurrence.get("weekdays") or []) if recurrence["every"] == "week" else set(range(1, 8))
    day = after.astimezone(tz).date()
    for _ in range(8):
        if until is not None and day > until:
            return None
        at = datetime.combine(day, time(hour, minute), tz)
        if day.isoweekday() in days and at > after:
            return at.astimezone(ZoneInfo("UTC"))
        day += timedelta(days=1)
    return None
