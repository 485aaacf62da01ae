"""Store incoming events: durably, exactly once per (workspace, messageId), each resolved to
the person it is about in the same transaction.

The insert commits with the request's transaction, so a 200 means the event is on disk; a
replayed messageId inserts nothing, resolves nothing and is counted as a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.ids import new_id
from siyu.identity.resolver import observe_many
from siyu.ingest.contracts import EventType, IncomingEvent
from siyu.ingest.identifiers import identifiers_of, subject_of
from siyu.ingest.tables import Event
from siyu.profiles.facade import apply_identity_outcome
from siyu.profiles.traits import TraitReport, record_traits
from siyu.storage.bulk import append_rows, fetch_rows

COLUMNS = (
    "id",
    "message_id",
    "type",
    "event",
    "anonymous_id",
    "user_id",
    "identity_id",
    "properties",
    "traits",
    "context",
    "group_id",
    "previous_id",
    "timestamp",
    "received_at",
)


def store_events(scoped: Session, events: Sequence[IncomingEvent], received_at: datetime) -> int:
    """Insert the events not seen before, each pointing at the person it is about; returns how
    many were new."""
    return len(store_new_events(scoped, events, received_at))


def store_new_events(scoped: Session, events: Sequence[IncomingEvent], received_at: datetime) -> set[str]:
    """As :func:`store_events`, returning the messageIds this call stored."""
    if not events:
        return set()
    unique = _unique_by_message_id(events)
    known = {m for (m,) in fetch_rows(scoped, Event, ("message_id",), "message_id", [e.message_id for e in unique])}
    fresh = [e for e in unique if e.message_id not in known]
    if not fresh:
        return set()
    resolved = observe_many(scoped, [identifiers_of(scoped, e) for e in fresh], subjects=[subject_of(e) for e in fresh])
    apply_identity_outcome(scoped, resolved.new_profile_ids, resolved.changes)
    event_ids = [new_id("evt_") for _ in fresh]
    inserted = append_rows(
        scoped,
        Event,
        COLUMNS,
        [
            (
                event_id,
                e.message_id,
                e.type.value,
                e.event,
                e.anonymous_id,
                e.user_id,
                identity_id,
                e.properties,
                e.traits,
                e.context,
                e.group_id,
                e.previous_id,
                e.timestamp,
                received_at,
            )
            for event_id, e, identity_id in zip(event_ids, fresh, resolved.primary_identity_ids, strict=True)
        ],
        on_conflict=("workspace_id", "message_id"),
    )
    if inserted < len(fresh):
        # Another transaction stored some of them first (PostgreSQL): ours are the ones it did not.
        ours = set(scoped.scalars(select(Event.id).where(Event.id.in_(event_ids))))
        fresh_ids = [
            (e, i)
            for event_id, e, i in zip(event_ids, fresh, resolved.primary_identity_ids, strict=True)
            if event_id in ours
        ]
    else:
        fresh_ids = list(zip(fresh, resolved.primary_identity_ids, strict=True))
    profile_of = resolved.profile_of
    reports = []
    for event, identity_id in fresh_ids:
        traits = _person_traits(event)
        profile_id = profile_of.get(identity_id) if identity_id else None
        if traits and profile_id and identity_id:
            reports.append(TraitReport(profile_id, identity_id, traits, _source(event), event.timestamp))
    record_traits(scoped, reports)
    return {e.message_id for e, _i in fresh_ids}


def _person_traits(event: IncomingEvent) -> dict[str, Any]:
    """Traits about the person: identify's traits, or context.traits on any call but group."""
    if event.type is EventType.GROUP:
        return {}
    return {**(event.context.get("traits") or {}), **(event.traits if event.type is EventType.IDENTIFY else {})}


def _source(event: IncomingEvent) -> str:
    library = event.context.get("library")
    name = library.get("name") if isinstance(library, dict) else None
    return f"segment:{name}" if isinstance(name, str) and name else "segment:http"


def _unique_by_message_id(events: Sequence[IncomingEvent]) -> list[IncomingEvent]:
    """A batch that repeats a messageId stores it once (the first)."""
    seen: set[str] = set()
    unique = []
    for event in events:
        if event.message_id not in seen:
            seen.add(event.message_id)
            unique.append(event)
    return unique
