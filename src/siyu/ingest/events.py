"""Store incoming events: durably, exactly once per (workspace, messageId), each resolved to
the person it is about in the same transaction.

The insert commits with the request's transaction, so a 200 means the event is on disk; a
replayed messageId inserts nothing, resolves nothing and is counted as a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.ids import new_id
from siyu.identity.contracts import Identifier
from siyu.identity.resolver import (
    Resolved,
    current_profiles,
    holds_resolution_turn,
    observe_many,
    resolve_seen,
    take_resolution_turn,
)
from siyu.identity.settings import workspace_rules
from siyu.ingest.contracts import EventType, IncomingEvent
from siyu.ingest.identifiers import carried_identifiers, identifiers_of, subject_of
from siyu.ingest.tables import Event
from siyu.profiles.facade import apply_identity_outcome
from siyu.profiles.traits import TraitReport, TraitWrites, clean_traits, plan_traits, write_traits
from siyu.storage.bulk import append_rows, fetch_rows
from siyu.storage.jsontext import encoded

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


class PreparedEvent(NamedTuple):
    """An event with all the work done that needs no database, so that it can be done before the
    writing transaction (by the request, not the writer)."""

    event: IncomingEvent
    identifiers: list[Identifier]  # carried: all but an alias's previousId (see identifiers_of)
    subject: Identifier | None
    row: list[Any]  # values in COLUMNS order; identity_id is set in the transaction
    traits: dict[str, Any]  # about the person, cleaned
    source: str


_IDENTITY_AT = COLUMNS.index("identity_id")


def prepare_events(events: Sequence[IncomingEvent], received_at: datetime) -> list[PreparedEvent]:
    return [
        PreparedEvent(
            e,
            carried_identifiers(e),
            subject_of(e),
            [
                new_id("evt_"),
                e.message_id,
                e.type.value,
                e.event,
                e.anonymous_id,
                e.user_id,
                None,
                encoded(e.properties),
                encoded(e.traits),
                encoded(e.context),
                e.group_id,
                e.previous_id,
                e.timestamp,
                received_at,
            ],
            clean_traits(_person_traits(e)),
            _source(e),
        )
        for e in events
    ]


def store_events(scoped: Session, events: Sequence[IncomingEvent], received_at: datetime) -> int:
    """Insert the events not seen before, each pointing at the person it is about; returns how
    many were new."""
    return len(store_prepared(scoped, prepare_events(events, received_at)))


def take_write_turn(scoped: Session) -> None:
    """Wait until this transaction may store events: on SQLite the database's write turn. On
    PostgreSQL transactions store events side by side, and wait for the workspace's resolution
    turn only when they change people (see :func:`store_prepared`). The identity rules are read
    first, so that the turn is not held for it."""
    workspace_rules(scoped)  # on SQLite this begins the transaction, and so takes the turn


@dataclass(frozen=True)
class LookedUp:
    """What storing some events reads that stays true while they wait for SQLite's write turn:
    which of them are new, and — when these teach the graph nothing — whom they are about.
    Identities and pairs are only ever added, so such a resolution holds without the turn (on
    PostgreSQL these events never take it); an event stored meanwhile is still caught by the
    insert's conflict clause, and the profiles their traits go to are read again once writing."""

    fresh: list[PreparedEvent]
    resolved: Resolved | None


def look_up(scoped: Session, events: Sequence[PreparedEvent]) -> LookedUp:
    """Read, without writing, what :func:`store_prepared` would first read for ``events``."""
    fresh = _fresh(scoped, events)
    if not fresh:
        return LookedUp(fresh, None)
    observations = [identifiers_of(scoped, p.event, p.identifiers) for p in fresh]
    return LookedUp(fresh, resolve_seen(scoped, observations, subjects=[p.subject for p in fresh]))


def store_prepared(scoped: Session, events: Sequence[PreparedEvent], looked: LookedUp | None = None) -> set[str]:
    """As :func:`store_events`, returning the messageIds this call stored. ``looked``: what
    :func:`look_up` read for exactly these events, before this transaction."""
    fresh = looked.fresh if looked is not None else _fresh(scoped, events) if events else []
    if not fresh:
        return set()
    subjects = [p.subject for p in fresh]
    resolved = looked.resolved if looked is not None else None
    if resolved is None:
        observations = [identifiers_of(scoped, p.event, p.identifiers) for p in fresh]
        # Events about people as already known change no one: on PostgreSQL such transactions do
        # not wait for the resolution turn, so they run side by side.
        if not holds_resolution_turn(scoped):
            resolved = resolve_seen(scoped, observations, subjects=subjects)
        if resolved is None:
            resolved = observe_many(scoped, observations, subjects=subjects)
    apply_identity_outcome(scoped, resolved.new_profile_ids, resolved.changes)
    for p, identity_id in zip(fresh, resolved.primary_identity_ids, strict=True):
        p.row[_IDENTITY_AT] = identity_id
    # Traits are planned before the events are inserted: a transaction that must wait for the turn
    # to write them waits holding no event another may be inserting too (that would deadlock).
    looked_early = looked is not None and looked.resolved is not None
    writes = _plan_traits(scoped, fresh, resolved.profile_of, looked_early)
    inserted = append_rows(scoped, Event, COLUMNS, [p.row for p in fresh], on_conflict=("workspace_id", "message_id"))
    if inserted < len(fresh):
        # Another transaction stored some of them first: ours are the ones it did not.
        ours = set(scoped.scalars(select(Event.id).where(Event.id.in_([p.row[0] for p in fresh]))))
        fresh = [p for p in fresh if p.row[0] in ours]
        writes = _plan_traits(scoped, fresh, resolved.profile_of, looked_early)
    write_traits(scoped, writes)
    return {p.event.message_id for p in fresh}


def _fresh(scoped: Session, events: Sequence[PreparedEvent]) -> list[PreparedEvent]:
    """The events whose messageId is not stored yet (each messageId once)."""
    unique = _unique_by_message_id(events)
    known = {
        m for (m,) in fetch_rows(scoped, Event, ("message_id",), "message_id", [p.event.message_id for p in unique])
    }
    return [p for p in unique if p.event.message_id not in known] if known else unique


def _plan_traits(
    scoped: Session, events: list[PreparedEvent], profile_of: dict[str, str | None], read_early: bool = False
) -> TraitWrites:
    """What the events' traits change. Profiles change under the resolution turn only: if they
    change, the turn is taken and they are read again, as is which profile each identifier is on
    now (a merge may have folded one into another meanwhile). So too when ``profile_of`` was read
    before this transaction (``read_early``)."""
    reports = []
    for p in events:
        identity_id = p.row[_IDENTITY_AT]
        profile_id = profile_of.get(identity_id) if p.traits and identity_id else None
        if profile_id:
            reports.append(TraitReport(profile_id, identity_id, p.traits, p.source, p.event.timestamp))
    writes = plan_traits(scoped, reports)
    if writes and (read_early or not holds_resolution_turn(scoped)):
        take_resolution_turn(scoped)
        profile_now = current_profiles(scoped, {r.identity_id for r in reports})
        reports = [replace(r, profile_id=now) for r in reports if (now := profile_now.get(r.identity_id))]
        writes = plan_traits(scoped, reports)
    return writes


def _person_traits(event: IncomingEvent) -> dict[str, Any]:
    """Traits about the person: identify's traits, or context.traits on any call but group."""
    if event.type is EventType.GROUP:
        return {}
    context_traits = event.context.get("traits") if event.context else None
    own = event.traits if event.type is EventType.IDENTIFY else {}
    return {**context_traits, **own} if isinstance(context_traits, dict) and context_traits else own


def _source(event: IncomingEvent) -> str:
    library = event.context.get("library")
    name = library.get("name") if isinstance(library, dict) else None
    return f"segment:{name}" if isinstance(name, str) and name else "segment:http"


def _unique_by_message_id(events: Sequence[PreparedEvent]) -> list[PreparedEvent]:
    """A batch that repeats a messageId stores it once (the first)."""
    seen: set[str] = set()
    unique = []
    for p in events:
        if p.event.message_id not in seen:
            seen.add(p.event.message_id)
            unique.append(p)
    return unique
