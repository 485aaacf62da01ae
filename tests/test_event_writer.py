"""Group commit: concurrent requests share transactions, yet each gets its own exact answer and a
bad request fails alone."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.identity.tables import Identity
from siyu.ingest import writer as writer_module
from siyu.ingest.contracts import EventType, IncomingEvent
from siyu.ingest.errors import InvalidEventError
from siyu.ingest.events import (
    LookedUp,
    PreparedEvent,
    look_up,
    prepare_events,
    store_events,
    store_prepared,
    take_write_turn,
)
from siyu.ingest.tables import Event
from siyu.ingest.writer import EventWriter, Stored
from siyu.profiles.tables import Profile
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import make_actor

AT = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def track(message_id: str, anonymous_id: str, **properties: object) -> IncomingEvent:
    return IncomingEvent(
        type=EventType.TRACK,
        message_id=message_id,
        timestamp=AT,
        anonymous_id=anonymous_id,
        event="Viewed",
        properties=dict(properties),
    )


async def store_unparsed(writer: EventWriter, workspace_id: str, events: list[IncomingEvent]) -> int:
    """How many of the events were new, handed over as the event API does (unparsed)."""
    return (await writer.store(workspace_id, lambda: events, AT, len(events))).new


def count_events(db: Database, workspace_id: str) -> int:
    with db.read(Scope.workspace(workspace_id)) as s:
        return int(s.scalar(select(func.count()).select_from(Event)) or 0)


def test_concurrent_requests_are_each_stored_once_and_answered_exactly(db: Database) -> None:
    a, b = make_actor(db, "acme"), make_actor(db, "brandb")
    writer = EventWriter(db, max_group_events=50)
    results: dict[tuple[int, int], int] = {}
    lock = threading.Lock()

    def client(n: int) -> None:
        for k in range(40):
            actor = a if (n + k) % 2 else b
            # Every client repeats one shared messageId: only the first to commit stores it.
            message_id = "shared" if k == 0 else f"m{n}-{k}"
            future = writer.submit(actor.workspace_id, [track(message_id, f"anon{n}")], AT)
            with lock:
                results[(n, k)] = future.result(timeout=60)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stop()
    # 6 clients × 39 own events, plus "shared" once per workspace that saw it.
    shared_workspaces = {(a if n % 2 else b).workspace_id for n in range(6)}
    assert count_events(db, a.workspace_id) + count_events(db, b.workspace_id) == 6 * 39 + len(shared_workspaces)
    assert sum(results.values()) == 6 * 39 + len(shared_workspaces)
    assert all(results[(n, k)] == 1 for n in range(6) for k in range(1, 40))
    with db.read(Scope.workspace(a.workspace_id)) as s:
        anonymous = set(s.scalars(select(Identity.value).where(Identity.kind == "anonymous_id")))
    assert anonymous == {f"anon{n}" for n in range(6)}


def test_a_failing_request_fails_alone_and_the_rest_of_its_group_is_stored(db: Database) -> None:
    a = make_actor(db, "acme")
    writer = EventWriter(db)
    # Hold the writer busy so the next requests gather into one group.
    blocker = writer.submit(a.workspace_id, [track("first", "anon-x")], AT)
    futures = [
        writer.submit(a.workspace_id, [track("ok-1", "anon-1")], AT),
        writer.submit(a.workspace_id, [track("bad", "anon-2", unserialisable=object())], AT),
        writer.submit(a.workspace_id, [track("ok-2", "anon-3")], AT),
    ]
    assert blocker.result(timeout=30) == 1
    assert futures[0].result(timeout=30) == 1
    with pytest.raises(TypeError):
        futures[1].result(timeout=30)
    assert futures[2].result(timeout=30) == 1
    writer.stop()
    with db.read(Scope.workspace(a.workspace_id)) as s:
        assert set(s.scalars(select(Event.message_id))) == {"first", "ok-1", "ok-2"}


def test_the_writer_restarts_after_a_stop(db: Database) -> None:
    a = make_actor(db, "acme")
    writer = EventWriter(db)
    assert writer.submit(a.workspace_id, [track("one", "anon")], AT).result(timeout=30) == 1
    writer.stop()
    assert writer.submit(a.workspace_id, [track("two", "anon")], AT).result(timeout=30) == 1
    assert writer.submit(a.workspace_id, [track("two", "anon")], AT).result(timeout=30) == 0
    writer.stop()
    assert count_events(db, a.workspace_id) == 2


def test_requests_on_an_event_loop_are_answered_exactly_and_a_failure_stays_theirs(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = make_actor(db, "acme")
    writer = EventWriter(db, max_group_events=8)
    real_store = writer_module.store_prepared

    def store_refusing_poison(scoped: Session, events: list[PreparedEvent], looked: LookedUp | None) -> set[str]:
        if any(p.event.message_id == "poison" for p in events):
            raise RuntimeError("refused")
        return real_store(scoped, events, looked)

    monkeypatch.setattr(writer_module, "store_prepared", store_refusing_poison)

    async def main() -> tuple[list[int | BaseException], bool]:
        calls = [store_unparsed(writer, a.workspace_id, [track(f"m{n % 30}", f"anon{n}")]) for n in range(60)]
        calls.append(store_unparsed(writer, a.workspace_id, [track("poison", "anon-p")]))
        # A request whose caller gives up (a client that went away) does not disturb the others.
        abandoned = asyncio.ensure_future(store_unparsed(writer, a.workspace_id, [track("gone", "anon-g")]))
        await asyncio.sleep(0)
        abandoned.cancel()
        answers = await asyncio.gather(*calls, return_exceptions=True)
        return answers, abandoned.cancelled()

    answers, cancelled = asyncio.run(main())
    writer.stop()
    assert cancelled
    assert isinstance(answers[-1], RuntimeError)
    # Each of the 30 messageIds is stored once and counted as new for exactly one request.
    assert sum(x for x in answers[:-1] if isinstance(x, int)) == 30
    assert all(x in (0, 1) for x in answers[:-1])
    with db.read(Scope.workspace(a.workspace_id)) as s:
        stored = set(s.scalars(select(Event.message_id)))
    assert {f"m{n}" for n in range(30)} <= stored and "poison" not in stored


def test_events_handed_over_unparsed_are_parsed_by_the_writer_and_a_bad_one_fails_alone(db: Database) -> None:
    a = make_actor(db, "acme")
    writer = EventWriter(db)
    on_thread: list[str] = []

    def parse(events: list[IncomingEvent]) -> Callable[[], list[IncomingEvent]]:
        def run() -> list[IncomingEvent]:
            on_thread.append(threading.current_thread().name)
            return events

        return run

    def invalid() -> list[IncomingEvent]:
        raise InvalidEventError("`event` is required for a track call")

    async def main() -> list[Stored | BaseException]:
        return await asyncio.gather(
            writer.store(a.workspace_id, parse([track("x1", "anon1"), track("x2", "anon2")]), AT, 2),
            writer.store(a.workspace_id, invalid, AT),
            writer.store(a.workspace_id, parse([track("x2", "anon2"), track("x3", "anon3")]), AT, 2),
            return_exceptions=True,
        )

    first, bad, second = asyncio.run(main())
    writer.stop()
    assert isinstance(bad, InvalidEventError)
    assert isinstance(first, Stored) and isinstance(second, Stored)
    assert (first.accepted, second.accepted) == (2, 2)
    assert first.new + second.new == 3  # x2 counts as new for one of them only
    assert set(on_thread) == {"siyu-event-writer"}
    assert count_events(db, a.workspace_id) == 3


def test_small_requests_queued_while_the_writer_waits_for_its_turn_join_its_transaction(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("on PostgreSQL a writer has no turn to wait for before it writes")
    a = make_actor(db, "acme")
    writer = EventWriter(db)
    real_store = writer_module.store_prepared
    transactions: list[list[str]] = []

    def recording_store(scoped: Session, events: list[PreparedEvent], looked: LookedUp | None) -> set[str]:
        transactions.append([p.event.message_id for p in events])
        return real_store(scoped, events, looked)

    monkeypatch.setattr(writer_module, "store_prepared", recording_store)
    scope = Scope.workspace(a.workspace_id)
    with db.transaction(scope) as holder:
        take_write_turn(holder)  # another writer holds the turn
        first = writer.submit(a.workspace_id, [track("first", "anon-1")], AT)
        deadline = time.monotonic() + 10
        while writer._queue is not None and not writer._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.01)  # until the writer took the first request: it then waits for the turn
        time.sleep(0.05)
        small = [writer.submit(a.workspace_id, [track(f"small-{n}", f"anon-s{n}")], AT) for n in range(3)]
        large = writer.submit(
            a.workspace_id, [track(f"large-{n}", "anon-l") for n in range(writer_module.LATE_REQUEST_EVENTS + 1)], AT
        )
    assert [f.result(10) for f in (first, *small, large)] == [1, 1, 1, 1, writer_module.LATE_REQUEST_EVENTS + 1]
    writer.stop()
    # The small ones joined the first request's transaction; the large one waited for the next.
    assert transactions[0] == ["first", "small-0", "small-1", "small-2"]
    assert len(transactions) == 2 and len(transactions[1]) == writer_module.LATE_REQUEST_EVENTS + 1
    assert count_events(db, a.workspace_id) == 5 + writer_module.LATE_REQUEST_EVENTS


def test_a_fault_of_the_writer_itself_fails_its_group_and_the_writer_keeps_writing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = make_actor(db, "acme")
    writer = EventWriter(db)
    real_parsed = writer_module._parsed

    def faulty_parsed(request: writer_module._Request, outcomes: list[writer_module._Outcome]) -> bool:
        if request.size == 7:  # stands for a bug in the writer, outside any one request's storing
            raise RuntimeError("writer bug")
        return real_parsed(request, outcomes)

    monkeypatch.setattr(writer_module, "_parsed", faulty_parsed)

    async def main() -> tuple[BaseException | Stored, int]:
        doomed = await asyncio.gather(
            writer.store(a.workspace_id, lambda: [track("doomed", "anon-d")], AT, size=7), return_exceptions=True
        )
        return doomed[0], await store_unparsed(writer, a.workspace_id, [track("after", "anon-a")])

    doomed, after = asyncio.run(asyncio.wait_for(main(), 10))
    writer.stop()
    assert isinstance(doomed, RuntimeError)
    assert after == 1  # the writer survived and stored the next request
    assert count_events(db, a.workspace_id) == 1


def identify(message_id: str, user_id: str, anonymous_id: str, **traits: object) -> IncomingEvent:
    return IncomingEvent(
        type=EventType.IDENTIFY,
        message_id=message_id,
        timestamp=AT,
        user_id=user_id,
        anonymous_id=anonymous_id,
        traits=dict(traits),
    )


def test_what_a_group_looked_up_before_its_turn_is_checked_when_it_writes(db: Database) -> None:
    """Before a large group waits for SQLite's turn it reads which events are new and whom they
    are about. Meanwhile another transaction stores one of them and merges two of its people: the
    event is stored once, and the traits go to the person as merged."""
    a = make_actor(db, "acme")
    scope = Scope.workspace(a.workspace_id)
    with db.transaction(scope) as s:
        store_events(s, [track(f"seen-{n}", f"v{n}") for n in range(120)] + [identify("u", "u0", "a0")], AT)

    def visit(message_id: str, visitor: str) -> IncomingEvent:
        return dataclasses.replace(track(message_id, visitor), context={"traits": {"city": "上海"}})

    group = prepare_events([visit(f"m{n}", f"v{n}") for n in range(120)], AT)
    with db.read(scope) as reading:
        looked = look_up(reading, group)
    assert looked.resolved is not None and len(looked.fresh) == 120  # nothing new to the graph
    with db.transaction(scope) as s:  # meanwhile: m0 arrives again, and visitor v1 signs in as u0
        store_events(s, [visit("m0", "v0"), identify("join", "u0", "v1")], AT)
    with db.transaction(scope) as s:
        stored = store_prepared(s, group, looked)
    assert stored == {f"m{n}" for n in range(1, 120)}
    with db.read(scope) as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.message_id == "m0")) == 1
        holder = s.scalar(select(Identity.profile_id).where(Identity.value == "v1"))
        assert holder == s.scalar(select(Identity.profile_id).where(Identity.value == "u0"))
        assert s.scalar(select(Profile.traits).where(Profile.id == holder)) == {"city": "上海"}


def test_a_large_group_looks_up_before_its_turn_and_stores_each_event_once(db: Database) -> None:
    a = make_actor(db, "acme")
    writer = EventWriter(db)
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        store_events(s, [identify(f"seen-{n}", f"u{n}", f"a{n}") for n in range(150)], AT)
    events = [track(f"t{n}", f"a{n % 150}") for n in range(300)] + [track("t0", "a0")]
    assert writer.submit(a.workspace_id, events, AT).result(30) == 300
    assert writer.submit(a.workspace_id, events, AT).result(30) == 0  # a replay stores nothing
    writer.stop()
    assert count_events(db, a.workspace_id) == 450


def _events_counted_by_statistics(db: Database) -> float:
    """The events the planner statistics know of (-1 or none: never analyzed)."""
    with db.engine.connect() as connection:
        if db.engine.dialect.name == "postgresql":
            return float(connection.exec_driver_sql("SELECT reltuples FROM pg_class WHERE relname = 'events'").scalar())
        if connection.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first() is None:
            return -1
        stat = connection.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = 'events'").first()
        return float(stat[0].split()[0]) if stat else -1


def test_the_writer_analyzes_the_tables_as_the_event_log_grows(db: Database) -> None:
    a = make_actor(db, "acme")
    before = _events_counted_by_statistics(db)
    writer = EventWriter(db, statistics_at=60)
    for n in range(5):  # 50 events: not yet
        writer.submit(a.workspace_id, [track(f"m{n}-{k}", f"anon{k}") for k in range(10)], AT).result(timeout=30)
    writer.stop()
    assert _events_counted_by_statistics(db) == before
    for n in range(5, 8):  # 80: the first refresh
        writer.submit(a.workspace_id, [track(f"m{n}-{k}", f"anon{k}") for k in range(10)], AT).result(timeout=30)
    writer.stop()  # waits for the refresh too
    assert _events_counted_by_statistics(db) >= 60
    if db.engine.dialect.name == "postgresql":
        # With statistics, a plan made for any workspace (as the ingest connections plan: see
        # make_engine) finds a messageId by the unique index, not by reading the workspace's
        # events through another index.
        with db.engine.connect() as connection:
            connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            connection.exec_driver_sql("SET enable_seqscan = off")
            connection.exec_driver_sql(
                "PREPARE lookup(text[], text) AS SELECT t.message_id FROM unnest($1) AS k(v) CROSS JOIN LATERAL "
                "(SELECT message_id FROM events WHERE workspace_id = $2 AND message_id = k.v OFFSET 0) AS t"
            )
            plan = " ".join(r[0] for r in connection.exec_driver_sql("EXPLAIN EXECUTE lookup(ARRAY['m1'], 'w')"))
        assert "uq_events_workspace_id_message_id" in plan, plan
    for n in range(8, 20):  # 200 events: the next refresh is at 600
        writer.submit(a.workspace_id, [track(f"m{n}-{k}", f"anon{k}") for k in range(10)], AT).result(timeout=30)
    writer.stop()
    assert 60 <= _events_counted_by_statistics(db) <= 80
