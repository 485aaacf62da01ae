"""Dashboard: headline counts and a daily trend, read through the owning domains' facades."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from siyu.commerce.facade import count_orders, daily_orders
from siyu.core.clock import utcnow
from siyu.ingest.facade import count_events, daily_events
from siyu.profiles.facade import count_profiles
from siyu.reports.contracts import Dashboard, DayPoint


def dashboard(scoped: Session, *, timezone: str, days: int = 30, now: datetime | None = None) -> Dashboard:
    """Counts of profiles, orders and events, and the last ``days`` local days (today included)."""
    tz = ZoneInfo(timezone)
    today = (now or utcnow()).astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=tz)
    orders = {d.day: d for d in daily_orders(scoped, since=since, timezone=timezone)}
    events = {d.day: d.events for d in daily_events(scoped, since=since, timezone=timezone)}
    trend = []
    for i in range(days):
        day = first + timedelta(days=i)
        o = orders.get(day)
        trend.append(DayPoint(day, o.orders if o else 0, o.paid_fen if o else 0, events.get(day, 0)))
    return Dashboard(
        profiles=count_profiles(scoped),
        orders=count_orders(scoped),
        events=count_events(scoped),
        timezone=timezone,
        trend=trend,
    )
