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
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.core.ids import new_id
from siyu.identity.resolver import observe_many
from siyu.ingest.contracts import EventType, IncomingEvent
from siyu.ingest.identifiers import identifiers_of, subject_of
from siyu.ingest.tables import Event
from siyu.profiles.facade import apply_identity_outcome
from siyu.profiles.traits import record_traits
from siyu.storage.scoping import require_workspace


def store_events(scoped: Session, events: Sequence[IncomingEvent], received_at: datetime) -> int:
    """Insert the events not seen before, each pointing at the person it is about; returns how
    many were new."""
    if not events:
        return 0
    workspace_id = require_workspace(scoped)
    unique = _unique_by_message_id(events)
    known = set(scoped.scalars(select(Event.message_id).where(Event.message_id.in_([e.message_id for e in unique]))))
    fresh = [e for e in unique if e.message_id not in known]
    if not fresh:
        return 0
    resolved = observe_many(scoped, [identifiers_of(scoped, e) for e in fresh], subjects=[subject_of(e) for e in fresh])
    apply_identity_outcome(scoped, resolved.new_profile_ids, resolved.changes)
    rows: list[dict[str, Any]] = [
        {
            "id": new_id("evt_"),
            "workspace_id": workspace_id,
            "message_id": e.message_id,
            "type": e.type.value,
            "event": e.event,
            "anonymous_id": e.anonymous_id,
            "user_id": e.user_id,
            "identity_id": identity_id,
            "properties": e.properties,
            "traits": e.traits,
            "context": e.context,
            "group_id": e.group_id,
            "previous_id": e.previous_id,
            "timestamp": e.timestamp,
            "received_at": received_at,
        }
        for e, identity_id in zip(fresh, resolved.primary_identity_ids, strict=True)
    ]
    insert_ = postgresql.insert if scoped.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert_(Event).on_conflict_do_nothing(index_elements=["workspace_id", "message_id"]).returning(Event.message_id)
    )
    stored = set(scoped.scalars(stmt, rows).all())
    profile_of = {row.id: row.profile_id for row in resolved.rows.values()}
    for event, identity_id in zip(fresh, resolved.primary_identity_ids, strict=True):
        traits = _person_traits(event)
        profile_id = profile_of.get(identity_id) if identity_id else None
        if event.message_id in stored and traits and profile_id and identity_id:
            record_traits(
                scoped,
                profile_id=profile_id,
                identity_id=identity_id,
                traits=traits,
                source=_source(event),
                observed_at=event.timestamp,
            )
    return len(stored)


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
