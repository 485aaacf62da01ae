"""The driver-level bulk path keeps tenancy: rows are stamped with the session's workspace and
updates reach that workspace's rows only."""

from __future__ import annotations

import re
import sqlite3
from contextlib import nullcontext
from typing import Any, cast

import pytest
from sqlalchemy import Table, select

from siyu.core.clock import utcnow
from siyu.identity.contracts import IdentifierKind
from siyu.identity.normalise import normalise
from siyu.identity.resolver import observe
from siyu.identity.tables import Identity, IdentityPair
from siyu.ingest.events import store_events
from siyu.ingest.segment import parse_call
from siyu.ingest.tables import Event
from siyu.profiles.tables import Profile
from siyu.storage.bulk import _fetch_plan, append_rows, fetch_rows, update_rows
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import make_actor

COLUMNS = ("id", "traits", "trait_sources", "first_seen_at", "last_seen_at", "created_at", "updated_at")


def test_append_and_update_stay_in_the_sessions_workspace(db: Database) -> None:
    a, b = make_actor(db, "acme"), make_actor(db, "brandb")
    now = utcnow()
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        rows = [("pf_a1", {"城市": "杭州"}, {}, now, now, now, now), ("pf_a2", {}, {}, now, now, now, now)]
        assert append_rows(s, Profile, COLUMNS, rows, on_conflict=("id",)) == 2
        assert append_rows(s, Profile, COLUMNS, rows[:1], on_conflict=("id",)) == 0  # already there
    with db.transaction(Scope.workspace(b.workspace_id)) as s:
        append_rows(s, Profile, COLUMNS, [("pf_b1", {}, {}, now, now, now, now)], on_conflict=("id",))
        # B tries to update A's profile by id: nothing happens.
        update_rows(s, Profile, ("display_name", "updated_at"), [("pf_a1", "偷改", now), ("pf_b1", "小B", now)])
    with db.read(Scope.workspace(a.workspace_id)) as s:
        mine = {p.id: (p.display_name, p.traits, p.created_at) for p in s.scalars(select(Profile))}
    assert mine == {"pf_a1": (None, {"城市": "杭州"}, now), "pf_a2": (None, {}, now)}
    with db.read(Scope.workspace(b.workspace_id)) as s:
        assert [(p.id, p.display_name) for p in s.scalars(select(Profile))] == [("pf_b1", "小B")]


def test_an_update_naming_one_row_twice_leaves_its_last_values(db: Database) -> None:
    a = make_actor(db, "acme")
    now = utcnow()
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        append_rows(s, Profile, COLUMNS, [("pf_1", {}, {}, now, now, now, now)], on_conflict=("id",))
        update_rows(s, Profile, ("display_name", "traits"), [("pf_1", "先", {"v": 1}), ("pf_1", "后", {"v": 2})])
    with db.read(Scope.workspace(a.workspace_id)) as s:
        assert [(p.display_name, p.traits) for p in s.scalars(select(Profile))] == [("后", {"v": 2})]


def test_bulk_writes_refuse_to_be_told_the_workspace(db: Database) -> None:
    a = make_actor(db, "acme")
    with db.transaction(Scope.workspace(a.workspace_id)) as s, pytest.raises(ValueError, match="workspace_id"):
        append_rows(s, Profile, ("id", "workspace_id"), [("pf_x", "ws_other")], on_conflict=("id",))
    with db.transaction(Scope.workspace(a.workspace_id)) as s, pytest.raises(ValueError, match="workspace_id"):
        update_rows(s, Profile, ("workspace_id",), [("pf_x", "ws_other")])


def test_fetch_reads_the_sessions_workspace_only_as_the_mapped_types_would(db: Database) -> None:
    a, b = make_actor(db, "acme"), make_actor(db, "brandb")
    now = utcnow()
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        rows = [(f"pf_a{i}", {"n": i, "城市": "杭州"}, {}, now, now, now, now) for i in range(3000)]
        append_rows(s, Profile, COLUMNS, rows, on_conflict=("id",))
    with db.transaction(Scope.workspace(b.workspace_id)) as s:
        append_rows(s, Profile, COLUMNS, [("pf_b1", {}, {}, now, now, now, now)], on_conflict=("id",))
        assert fetch_rows(s, Profile, ("id",), "id", ["pf_a1", "pf_b1"]) == [("pf_b1",)]  # not A's
    with db.read(Scope.workspace(a.workspace_id)) as s:
        wanted = [f"pf_a{i}" for i in range(0, 3000, 2)] + ["pf_b1", "pf_missing", "pf_a0"]
        got = fetch_rows(s, Profile, ("id", "traits", "created_at"), "id", wanted)
        assert len(got) == 1500
        assert {i: (t, c) for i, t, c in got}["pf_a42"] == ({"n": 42, "城市": "杭州"}, now)
        assert fetch_rows(s, Profile, ("id",), "id", []) == []
        with pytest.raises(ValueError, match="no columns"):
            fetch_rows(s, Profile, ("id", "secret"), "id", ["pf_a1"])


def test_fetch_by_several_keys_finds_rows_matching_any_each_once(db: Database) -> None:
    a, b = make_actor(db, "acme"), make_actor(db, "brandb")
    now = utcnow()
    with db.transaction(Scope.workspace(b.workspace_id)) as s:
        append_rows(s, Profile, COLUMNS, [("pf_b", {}, {}, now, now, now, now)], on_conflict=("id",))
        update_rows(s, Profile, ("display_name",), [("pf_b", "x")])
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        rows = [(f"pf_{i}", {}, {}, now, now, now, now) for i in range(1, 4)]
        append_rows(s, Profile, COLUMNS, rows, on_conflict=("id",))
        update_rows(s, Profile, ("display_name",), [("pf_1", "x"), ("pf_2", "pf_1"), ("pf_3", "y")])
        by_either = fetch_rows(s, Profile, ("id", "display_name"), ("id", "display_name"), ["pf_1", "x"])
        assert sorted(by_either) == [("pf_1", "x"), ("pf_2", "pf_1")]  # pf_1 matches twice, comes once
        assert fetch_rows(s, Profile, ("id",), ("id", "display_name"), ["y"]) == [("pf_3",)]


def test_fetch_sees_what_the_session_has_not_written_yet(db: Database) -> None:
    a = make_actor(db, "acme")
    now = utcnow()
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        s.add(Profile(id="pf_new", traits={}, trait_sources={}, first_seen_at=now, last_seen_at=now))
        assert fetch_rows(s, Profile, ("id",), "id", ["pf_new"]) == [("pf_new",)]


def test_lookups_use_their_index_even_after_statistics_of_a_small_table(db: Database) -> None:
    """Statistics taken while a table is tiny make SQLite's planner scan it; lookups by key name
    their index, so they keep finding rows by index as the table grows."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans from statistics its autovacuum keeps current")
    a = make_actor(db, "acme")
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        observe(s, [normalise(IdentifierKind.PHONE, "13800000001")])
    with db.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")  # while it holds one identifier
    plans: list[str] = []
    with db.read(Scope.workspace(a.workspace_id)) as s:
        driver = s.connection().connection.driver_connection
        assert driver is not None
        explain = sqlite3.connect(db.engine.url.database or "")

        def record(statement: str) -> None:
            if statement.startswith("SELECT") and "json_each" in statement:
                # The traced text has its parameters inlined: plan it as it ran.
                plans.extend(str(row[3]) for row in explain.execute(f"EXPLAIN QUERY PLAN {statement}"))

        driver.set_trace_callback(record)
        try:
            for model, columns, key in [
                (Identity, ("id", "profile_id"), "value"),
                (Identity, ("id",), "id"),
                (IdentityPair, ("other_id",), "identity_id"),
                (Event, ("message_id",), "message_id"),
                (Profile, ("id",), "id"),
            ]:
                fetch_rows(s, model, columns, key, ["x"])
        finally:
            driver.set_trace_callback(None)
            explain.close()
    scans = [p for p in plans if p.startswith("SCAN") and "json_each" not in p]
    assert plans and not scans, plans


AWKWARD = ['say "hi"', "back\\slash", "new\nline", "tab\tand 'quote'", "杭州 🛒", '{"not": json}', "null"]


@pytest.mark.parametrize("many", [False, True])
def test_values_come_back_exactly_whatever_they_hold(db: Database, many: bool) -> None:
    from datetime import timedelta, timezone

    from siyu.ingest.events import COLUMNS as EVENT_COLUMNS

    a = make_actor(db, "acme")
    at = utcnow().astimezone(timezone(timedelta(hours=8)))  # stored as the same instant, in UTC
    properties = {"list": [1, 2.5, None, True, 'x"y'], "大": {"b": None}, "n": 2**53}
    tail = (properties, {}, {"ip": "1.2.3.4"}, None, None, at, at)
    rows = [
        (f"evt_{i}", f"{AWKWARD[i % 7]}#{i}", "track", AWKWARD[i % 7], None, AWKWARD[(i + 1) % 7], "idn_1", *tail)
        for i in range(5100 if many else 7)  # beyond the rows one statement takes, and within
    ]
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        assert append_rows(s, Event, EVENT_COLUMNS, rows, on_conflict=("workspace_id", "message_id")) == len(rows)
        append_rows(s, Profile, COLUMNS, [("pf_1", {}, {}, at, at, at, at)], on_conflict=("id",))
        update_rows(s, Profile, ("display_name", "traits"), [("pf_1", AWKWARD[0], {"k": AWKWARD[1], "v": [None]})])
    with db.read(Scope.workspace(a.workspace_id)) as s:
        stored = {e.id: e for e in s.scalars(select(Event))}
        assert len(stored) == len(rows)
        for row in rows[:7]:
            e = stored[row[0]]
            assert (e.message_id, e.event, e.anonymous_id, e.user_id) == (row[1], row[3], None, row[5])
            assert (e.properties, e.traits, e.context, e.group_id) == (properties, {}, {"ip": "1.2.3.4"}, None)
            assert e.timestamp == at and e.timestamp.utcoffset() == timedelta(0)
        profile = s.scalars(select(Profile)).one()
        assert (profile.display_name, profile.traits) == (AWKWARD[0], {"k": AWKWARD[1], "v": [None]})


LOOKUPS = [
    (Identity, ("id", "profile_id"), "value"),
    (Identity, ("id",), "id"),
    (IdentityPair, ("other_id",), "identity_id"),
    (Event, ("message_id",), "message_id"),
    (Profile, ("id",), "id"),
]


def test_postgresql_lookups_probe_their_key_in_plans_made_while_tables_were_small(db: Database) -> None:
    """The event writer's connections keep each plan (see ``make_engine``). A plan made while a
    table is small still finds each value through the index on its key, never by reading the
    workspace's rows through another index and filtering them."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's lookups name their index")
    a = make_actor(db, "acme")
    now = utcnow()
    calls = [{"type": "identify", "userId": f"u{i}", "anonymousId": f"a{i}", "messageId": f"m{i}"} for i in range(20)]
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        store_events(s, [parse_call(c, now) for c in calls], now)
    with db.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    with db.keyed_transaction(Scope.workspace(a.workspace_id)) as s:
        driver: Any = s.connection().connection.driver_connection
        for model, columns, key in LOOKUPS:
            sql, _readers = _fetch_plan(cast(Table, model.__table__), columns, (key,), "postgresql")
            plan = "\n".join(r[0] for r in driver.execute(f"EXPLAIN {sql}", {"w": a.workspace_id, "k0": ["x"]}))
            probe = re.compile(rf"Index Cond: .*\(?{key}\)?(::text)? = \(?k\.v\)?")
            assert probe.search(plan), f"{model.__tablename__} by {key}:\n{plan}"


def test_traits_read_in_bulk_come_in_the_order_asked_for_this_workspace_only(db: Database) -> None:
    from siyu.profiles.facade import traits_in_order

    a, b = make_actor(db, "acme"), make_actor(db, "brandb")
    now = utcnow()
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        rows = [(f"pf_a{i}", {"n": i, "城市": "杭州"}, {}, now, now, now, now) for i in range(300)]
        append_rows(s, Profile, COLUMNS, rows, on_conflict=("id",))
        update_rows(s, Profile, ("display_name", "updated_at"), [("pf_a7", "小七", now)])
    with db.transaction(Scope.workspace(b.workspace_id)) as s:
        append_rows(s, Profile, COLUMNS, [("pf_b1", {"n": -1}, {}, now, now, now, now)], on_conflict=("id",))
    asked = [f"pf_a{i}" for i in range(299, -1, -3)] + ["pf_b1", "pf_none", "pf_a7"]
    with db.read(Scope.workspace(a.workspace_id)) as s:
        names, traits = traits_in_order(s, asked)
    expected = [{"n": int(p[4:]), "城市": "杭州"} for p in asked[:-3]]
    assert traits == [*expected, {}, {}, {"n": 7, "城市": "杭州"}]  # B's profile is not A's to read
    assert names == [""] * (len(asked) - 1) + ["小七"]


def _after_stale_statistics(db: Database, *, reachable: bool) -> tuple[str, list[str]]:
    """Statistics taken while only one workspace had anyone (20 people), then 3,000 people in
    another, each named by their id in ``name``; ``reachable``: each with a phone that agreed
    to marketing SMS. Returns that workspace and its people."""
    from siyu.profiles.tables import ConsentRecord

    now = utcnow()

    def people(workspace_id: str, prefix: str, n: int) -> list[str]:
        ids = [f"pf_{prefix}{i}" for i in range(n)]
        with db.transaction(Scope.workspace(workspace_id)) as s:
            rows = [(p, {"name": p}, {}, now, now, now, now) for p in ids]
            append_rows(s, Profile, COLUMNS, rows, on_conflict=("id",))
            if reachable:
                identity = ("id", "profile_id", "kind", "scope", "value", "weak", "shared", "first_seen_at")
                phones = [(f"idn_{p}", p, "phone", "", f"+86138{i:07d}", False, False, now) for i, p in enumerate(ids)]
                append_rows(s, Identity, identity, phones, on_conflict=("id",))
                record = ("id", "identity_id", "channel", "purpose", "status", "at", "source", "proof", "recorded_at")
                grants = [(f"cns_{p}", f"idn_{p}", "sms", "marketing", "granted", now, "form", {}, now) for p in ids]
                append_rows(s, ConsentRecord, record, grants, on_conflict=("id",))
        return ids

    a, b = make_actor(db, "acme"), make_actor(db, "brandb")
    people(a.workspace_id, "a", 20)
    with db.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    return b.workspace_id, people(b.workspace_id, "b", 3000)


class _Explaining:
    """A driver cursor that has each statement planned (``EXPLAIN``) before it runs it."""

    def __init__(self, cur: Any, plans: list[str]) -> None:
        self.cur, self.plans = cur, plans

    def execute(self, statement: str, params: Any) -> _Explaining:
        self.plans.append("\n".join(r[0] for r in self.cur.execute(f"EXPLAIN {statement}", params).fetchall()))
        self.cur.execute(statement, params)
        return self

    def fetchall(self) -> list[Any]:
        return cast(list[Any], self.cur.fetchall())

    @property
    def rowcount(self) -> int:
        return int(self.cur.rowcount)


def _explained(module: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The plans of the statements ``module`` runs through its ``pg_cursor`` from now on."""
    plans: list[str] = []
    real = module.pg_cursor
    monkeypatch.setattr(
        module, "pg_cursor", lambda connection: nullcontext(_Explaining(real(connection).__enter__(), plans))
    )
    return plans


def test_postgresql_keyed_reads_look_each_person_up_when_statistics_predate_the_workspace(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statistics taken before a workspace's rows arrived make PostgreSQL take the workspace to
    hold one row. A keyed read (a send's traits, addresses and consent) must still find each
    person through the index on their key, never loop over the workspace's rows per person."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's keyed reads name their index")
    from siyu.profiles import consent
    from siyu.profiles.facade import traits_in_order
    from siyu.storage import keyed

    workspace_id, asked = _after_stale_statistics(db, reachable=True)

    plans = _explained(keyed, monkeypatch)
    with db.read(Scope.workspace(workspace_id)) as s:
        _names, traits = traits_in_order(s, asked)
        reached = consent.reachable(s, asked, ("phone",), ("sms", "marketing"))
    assert traits == [{"name": p} for p in asked] and len(reached) == len(asked) and all(r[2] for r in reached)
    assert len(plans) == 2
    for plan in plans:
        assert not re.search(r"using \w*workspace_id", plan), plan  # the workspace's rows, one loop per person


@pytest.mark.parametrize("awkward", [False, True])
def test_keyed_reads_take_any_keys_in_their_order(db: Database, awkward: bool) -> None:
    """Keys travel as one parameter: on PostgreSQL joined by the unit separator, or as an array
    when one of them is empty or holds it. Either way each comes back once, in its place."""
    from siyu.storage.keyed import keyed_rows

    a, b = make_actor(db, "acme"), make_actor(db, "brandb")
    now = utcnow()
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        append_rows(
            s, Profile, COLUMNS, [(f"pf_{i}", {}, {}, now, now, now, now) for i in range(5)], on_conflict=("id",)
        )
    with db.transaction(Scope.workspace(b.workspace_id)) as s:
        append_rows(s, Profile, COLUMNS, [("pf_b", {}, {}, now, now, now, now)], on_conflict=("id",))
    keys = ["pf_3", "杭州 'x' \"y\"", "pf_b", "pf_0", "a,b{c}", "pf_3", *(["", "a\x1fb"] if awkward else [])]
    sql = "SELECT keys.key, p.id FROM keys LEFT JOIN profiles p ON p.id = keys.key AND {workspace:p} ORDER BY keys.n"
    with db.read(Scope.workspace(a.workspace_id)) as s:
        rows = keyed_rows(s, sql, keys)
    assert [k for k, _ in rows] == keys
    assert [p for _, p in rows] == ["pf_3", None, None, "pf_0", None, "pf_3", *([None, None] if awkward else [])]


def test_postgresql_claims_due_messages_through_their_partial_index_in_any_plan(db: Database) -> None:
    """A claim's plan kept for any parameters (a generic plan) still reads the partial index of
    due messages, never every message of the workspace."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's claim is planned with its statuses written in, as here")
    from siyu.storage.bulk import claim_statement_pg

    sql = claim_statement_pg("messages", "'queued', 'sending'", "not_before", "messages.id")
    for n, name in enumerate(("w", "now", "n", "claimed", "until"), start=1):
        sql = sql.replace(f"%({name})s", f"${n}")
    with db.engine.begin() as connection:
        connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        connection.exec_driver_sql(f"PREPARE claim(text, timestamptz, int, text, timestamptz) AS {sql}")
        try:
            plan = "\n".join(
                r[0] for r in connection.exec_driver_sql("EXPLAIN EXECUTE claim('w', now(), 10, 's', now())")
            )
        finally:
            connection.exec_driver_sql("DEALLOCATE claim")
    assert "ix_messages_due" in plan, plan


def test_postgresql_updates_and_deletes_find_each_row_by_its_key_when_statistics_predate_the_workspace(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As keyed reads: after statistics taken while only another workspace had rows, updating
    or deleting rows by id never reads them through the workspace's index (all its rows)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite updates and deletes row by row through the key's index")
    from siyu.storage import bulk
    from siyu.storage.bulk import delete_rows

    workspace_id, ids = _after_stale_statistics(db, reachable=False)

    plans = _explained(bulk, monkeypatch)
    with db.transaction(Scope.workspace(workspace_id)) as s:
        update_rows(s, Profile, ("display_name",), [(p, p.upper()) for p in ids[:2000]])
        assert delete_rows(s, Profile, "id", ids[2000:]) == 1000
    with db.read(Scope.workspace(workspace_id)) as s:
        assert sorted(s.scalars(select(Profile.display_name))) == sorted(p.upper() for p in ids[:2000])
    assert len(plans) == 2
    for plan in plans:
        assert not re.search(r"using \w*workspace_id", plan), plan  # the workspace's rows, all of them
