"""Ingest facade: event reads for reports, bulk writes for loaders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session

from siyu.core.ids import new_id
from siyu.core.pagination import Page
from siyu.identity.tables import Identity
from siyu.ingest.events import COLUMNS
from siyu.ingest.imports.readers import iter_rows
from siyu.ingest.tables import Event
from siyu.profiles.masking import mask_mapping
from siyu.storage.bulk import append_rows
from siyu.storage.daybucket import local_day, parse_day
from siyu.storage.jsontext import encoded
from siyu.storage.paging import newest_first
from siyu.storage.scoping import require_workspace

__all__ = ["iter_rows"]


@dataclass(frozen=True)
class DailyEvents:
    day: date
    events: int


def count_events(scoped: Session) -> int:
    """The events people's behaviour made (not those siyu derived)."""
    return int(scoped.scalar(select(func.count()).select_from(Event).where(Event.derived.is_(False))) or 0)


def event_names(scoped: Session, limit: int = 5_000) -> list[str]:
    """The names of the track events in the event log (a scan: for small workspaces, or when the
    batch engine has no snapshot yet)."""
    stmt = select(Event.event).where(Event.event.is_not(None)).distinct().limit(limit)
    return sorted(str(e) for e in scoped.scalars(stmt))


def group_ids(scoped: Session, limit: int = 5_000) -> list[str]:
    """The community groups group calls have named (a scan, like ``event_names``)."""
    stmt = select(Event.group_id).where(Event.type == "group", Event.group_id.is_not(None)).distinct().limit(limit)
    return sorted(str(g) for g in scoped.scalars(stmt))


def daily_events(scoped: Session, *, since: datetime, timezone: str) -> list[DailyEvents]:
    day = local_day(scoped, Event.timestamp, timezone).label("day")
    rows = scoped.execute(
        select(day, func.count()).where(Event.timestamp >= since, Event.derived.is_(False)).group_by(day).order_by(day)
    ).all()
    return [DailyEvents(parse_day(d), int(n)) for d, n in rows]


def insert_event_rows(scoped: Session, rows: Sequence[dict[str, Any]]) -> None:
    workspace_id = require_workspace(scoped)
    if rows:
        scoped.execute(insert(Event), [{**r, "workspace_id": workspace_id} for r in rows])


@dataclass(frozen=True)
class DerivedEvent:
    """An event siyu derives itself (a lifecycle stage change …) about a known identity."""

    message_id: str
    event: str
    identity_id: str
    properties: dict[str, Any]
    timestamp: datetime
    source: str


def append_derived_events(scoped: Session, events: Sequence[DerivedEvent], received_at: datetime) -> int:
    """Store derived events in the event log, each messageId once (a replay adds nothing); they
    need no resolution, their identity is known. Returns how many were new."""
    rows = [
        [
            new_id("evt_"),
            e.message_id,
            "track",
            e.event,
            None,
            None,
            e.identity_id,
            encoded(e.properties),
            encoded({}),
            encoded({"source": e.source}),
            None,
            None,
            e.timestamp,
            received_at,
            True,
        ]
        for e in events
    ]
    return append_rows(scoped, Event, (*COLUMNS, "derived"), rows, on_conflict=("workspace_id", "message_id"))


@dataclass(frozen=True)
class EventPublic:
    id: str
    message_id: str
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    identity_id: str | None
    profile_id: str | None
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    timestamp: datetime
    received_at: datetime


def list_events(
    scoped: Session,
    *,
    mask: bool,
    type_: str | None = None,
    name: str | None = None,
    person: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[EventPublic]:
    """Newest received first; ``person`` matches userId or anonymousId. ``mask`` hides personal
    data in traits, properties and context for roles that need not see it."""
    stmt: Any = select(Event, Identity.profile_id).outerjoin(Identity, Identity.id == Event.identity_id)
    if type_:
        stmt = stmt.where(Event.type == type_)
    if name:
        stmt = stmt.where(Event.event == name)
    if person:
        stmt = stmt.where(or_(Event.user_id == person, Event.anonymous_id == person))

    def present(pair: Any) -> EventPublic:
        row, profile_id = pair
        hide = mask_mapping if mask else dict
        return EventPublic(
            row.id,
            row.message_id,
            row.type,
            row.event,
            row.user_id,
            row.anonymous_id,
            row.identity_id,
            profile_id,
            hide(row.properties or {}),
            hide(row.traits or {}),
            hide(row.context or {}),
            row.timestamp,
            row.received_at,
        )

    return newest_first(scoped, stmt, Event.id, cursor=cursor, limit=limit, convert=present)


def events_of_identities(
    scoped: Session, identity_ids: Sequence[str], *, mask: bool, limit: int = 100
) -> list[EventPublic]:
    """A person's latest events: those that carried any of their identifiers."""
    if not identity_ids:
        return []
    rows = scoped.execute(
        select(Event, Identity.profile_id)
        .outerjoin(Identity, Identity.id == Event.identity_id)
        .where(Event.identity_id.in_(list(identity_ids)))
        .order_by(Event.timestamp.desc())
        .limit(limit)
    ).all()
    hide = mask_mapping if mask else dict
    return [
        EventPublic(
            r.id,
            r.message_id,
            r.type,
            r.event,
            r.user_id,
            r.anonymous_id,
            r.identity_id,
            profile_id,
            hide(r.properties or {}),
            hide(r.traits or {}),
            hide(r.context or {}),
            r.timestamp,
            r.received_at,
        )
        for r, profile_id in rows
    ]


def people_by_property(
    scoped: Session, names: Sequence[str], key: str, values: Sequence[str]
) -> dict[tuple[str, str], int]:
    """How many people (identities, each once) had each of the named events with the property
    ``key`` equal to one of ``values``: (event name, value) → people. For callbacks that carry
    an attribution key (an OA scene, a WeCom contact way's state)."""
    if not values or not names:
        return {}
    value = Event.properties[key].as_string()
    rows = scoped.execute(
        select(Event.event, value, func.count(func.distinct(Event.identity_id)))
        .where(Event.event.in_(names), value.in_(list(values)))
        .group_by(Event.event, value)
    )
    return {(str(name), str(v)): int(n) for name, v, n in rows}
