"""Store incoming events: durably, exactly once per (workspace, messageId), each resolved to
the person it is about in the same transaction.

The insert commits with the request's transaction, so a 200 means the event is on disk; a
replayed messageId inserts nothing, resolves nothing and is counted as a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.core.ids import new_id
from siyu.identity.resolver import observe
from siyu.ingest.contracts import IncomingEvent
from siyu.ingest.identifiers import identifiers_of
from siyu.ingest.tables import Event
from siyu.profiles.facade import apply_identity_outcome
from siyu.storage.scoping import require_workspace


def store_events(scoped: Session, events: Sequence[IncomingEvent], received_at: datetime) -> int:
    """Insert the events not seen before; returns how many were new."""
    if not events:
        return 0
    workspace_id = require_workspace(scoped)
    rows: list[dict[str, Any]] = [
        {
            "id": new_id("evt_"),
            "workspace_id": workspace_id,
            "message_id": e.message_id,
            "type": e.type.value,
            "event": e.event,
            "anonymous_id": e.anonymous_id,
            "user_id": e.user_id,
            "properties": e.properties,
            "traits": e.traits,
            "context": e.context,
            "group_id": e.group_id,
            "previous_id": e.previous_id,
            "timestamp": e.timestamp,
            "received_at": received_at,
        }
        for e in _unique_by_message_id(events)
    ]
    insert_ = postgresql.insert if scoped.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert_(Event)
        .on_conflict_do_nothing(index_elements=["workspace_id", "message_id"])
        .returning(Event.id, Event.message_id)
    )
    inserted = scoped.execute(stmt, rows).all()
    by_message = {e.message_id: e for e in events}
    for event_id, message_id in inserted:
        outcome = observe(scoped, identifiers_of(scoped, by_message[message_id]))
        apply_identity_outcome(scoped, outcome)
        if outcome.primary_identity_id:
            scoped.execute(update(Event).where(Event.id == event_id).values(identity_id=outcome.primary_identity_id))
    return len(inserted)


def _unique_by_message_id(events: Sequence[IncomingEvent]) -> list[IncomingEvent]:
    """A batch that repeats a messageId stores it once (the first)."""
    seen: set[str] = set()
    unique = []
    for event in events:
        if event.message_id not in seen:
            seen.add(event.message_id)
            unique.append(event)
    return unique
