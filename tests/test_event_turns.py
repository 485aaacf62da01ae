"""On PostgreSQL, transactions storing events wait for the workspace's resolution turn only when
they change people: events about people already known are stored side by side."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from siyu.identity.resolver import holds_resolution_turn, take_resolution_turn
from siyu.identity.tables import Identity
from siyu.ingest.contracts import EventType, IncomingEvent
from siyu.ingest.events import store_events
from siyu.ingest.tables import Event
from siyu.profiles.tables import Profile
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import make_actor

AT = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def call(message_id: str, kind: EventType = EventType.TRACK, **fields: object) -> IncomingEvent:
    return IncomingEvent(type=kind, message_id=message_id, timestamp=AT, **fields)  # type: ignore[arg-type]


@pytest.fixture
def scope(db: Database) -> Scope:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes one transaction at a time")
    return Scope.workspace(make_actor(db, "acme").workspace_id)


def _store_in_thread(db: Database, scope: Scope, events: list[IncomingEvent]) -> threading.Thread:
    def store() -> None:
        with db.transaction(scope) as s:
            store_events(s, events, AT)

    thread = threading.Thread(target=store)
    thread.start()
    return thread


def _profile_of(db: Database, scope: Scope, value: str) -> str | None:
    with db.read(scope) as s:
        return s.scalar(select(Identity.profile_id).where(Identity.value == value))


def test_events_about_known_people_do_not_wait_for_the_turn(db: Database, scope: Scope) -> None:
    with db.transaction(scope) as s:
        store_events(s, [call("m1", anonymous_id="a1", event="Viewed")], AT)
    with db.transaction(scope) as s:
        take_resolution_turn(s)  # another transaction is changing people
        known = _store_in_thread(db, scope, [call("m2", anonymous_id="a1", event="Viewed")])
        new = _store_in_thread(db, scope, [call("m3", anonymous_id="a2", event="Viewed")])
        known.join(10)
        assert not known.is_alive()  # stored meanwhile
        new.join(0.5)
        assert new.is_alive()  # a new identifier waits for the turn
    new.join(10)
    assert not new.is_alive()
    with db.transaction(scope) as s:
        assert store_events(s, [call("m2", anonymous_id="a1"), call("m4", anonymous_id="a1")], AT) == 1
        assert not holds_resolution_turn(s)


def test_a_link_waits_for_the_turn(db: Database, scope: Scope) -> None:
    with db.transaction(scope) as s:
        store_events(s, [call("m1", anonymous_id="a1"), call("m2", EventType.IDENTIFY, user_id="u1")], AT)
    with db.transaction(scope) as s:
        take_resolution_turn(s)
        linking = _store_in_thread(db, scope, [call("m3", EventType.IDENTIFY, user_id="u1", anonymous_id="a1")])
        linking.join(0.5)
        assert linking.is_alive()  # both are known, but not yet as one person
    linking.join(10)
    assert _profile_of(db, scope, "a1") == _profile_of(db, scope, "u1")


def test_traits_reported_during_a_merge_reach_the_surviving_profile(db: Database, scope: Scope) -> None:
    with db.transaction(scope) as s:
        store_events(s, [call("m1", EventType.IDENTIFY, user_id="u1")], AT)
    with db.transaction(scope) as s:
        store_events(s, [call("m2", anonymous_id="a1", event="Viewed")], AT)
    member, visitor = _profile_of(db, scope, "u1"), _profile_of(db, scope, "a1")
    assert member and visitor and member < visitor  # the member's is older: it will survive
    with db.transaction(scope) as s:
        store_events(s, [call("m3", EventType.IDENTIFY, user_id="u1", anonymous_id="a1")], AT)  # merging
        # Meanwhile the visitor reports a city: known as the visitor's profile, which is going.
        reporting = _store_in_thread(
            db, scope, [call("m4", EventType.IDENTIFY, anonymous_id="a1", traits={"city": "杭州"})]
        )
        reporting.join(0.5)
        assert reporting.is_alive()  # its traits wait for the turn
    reporting.join(10)
    assert _profile_of(db, scope, "a1") == member
    with db.read(scope) as s:
        assert s.get(Profile, visitor) is None
        survivor = s.get(Profile, member)
        assert survivor is not None and survivor.traits == {"city": "杭州"}


def _waiting_for_the_turn(db: Database) -> bool:
    with db.engine.connect() as connection:
        waiting = connection.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
        ).scalar()
    return bool(waiting)


def test_an_event_sent_twice_at_once_is_stored_once_without_a_deadlock(db: Database, scope: Scope) -> None:
    """A transaction waits for the turn before it inserts its events, never after: else one holding
    an event while it waits, and the turn's holder inserting the same messageId, would wait for
    each other."""
    with db.transaction(scope) as s:
        store_events(s, [call("m1", anonymous_id="a1", event="Viewed")], AT)
    replay = call("m2", EventType.IDENTIFY, anonymous_id="a1", traits={"city": "杭州"})
    stored: list[int] = []
    with db.transaction(scope) as s:
        take_resolution_turn(s)
        other = threading.Thread(target=lambda: stored.append(_store(db, scope, replay)))
        other.start()
        deadline = time.monotonic() + 10
        while not _waiting_for_the_turn(db) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert other.is_alive()
        stored.append(store_events(s, [replay], AT))  # the same call, retried by the client
    other.join(10)
    assert stored == [1, 0]
    with db.read(scope) as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 2


def _store(db: Database, scope: Scope, event: IncomingEvent) -> int:
    with db.transaction(scope) as s:
        return store_events(s, [event], AT)
