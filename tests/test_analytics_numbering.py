"""People numbered for a run: every identifier carries its person's code (the snapshot keeps
them), one per person, and turning codes back gives the ids they stand for; a code no one has any
more stands for no one."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from siyu.analytics.rule_inputs import (
    READ_IN_PLACE,
    Asked,
    Coded,
    coded_snapshot_inputs,
    names_a_store,
    numbered_identities,
    snapshot_inputs,
)
from siyu.analytics.runs import segment_changes
from siyu.analytics.snapshots import KINDS, LATEST_KEY, places_in, refresh_snapshots, snapshot_path
from siyu.commerce.contracts import OrderStatus
from siyu.commerce.orders import ItemIn
from siyu.commerce.products import ProductIn, upsert_products
from siyu.core.clock import utcnow
from siyu.identity.contracts import IdentifierKind
from siyu.identity.normalise import normalise
from siyu.identity.resolver import observe_many
from siyu.identity.tables import Identity
from siyu.profiles.consent import Channel, ConsentIn, ConsentStatus, Purpose, record_consents
from siyu.profiles.facade import apply_identity_outcome
from siyu.rules.buckets import bucket_of
from siyu.rules.compiler import Moment, compile_rule
from siyu.rules.nodes import parse_rule
from siyu.segments.contracts import SegmentSpec
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import make_actor
from tests.test_analytics_snapshots import set_traits, sync, with_buyers


@pytest.mark.parametrize("copy", [True, False], ids=["copied in", "read in place"])
def test_each_person_gets_one_code_and_identifiers_of_no_one_get_none(tmp_path: Path, copy: bool) -> None:
    path = tmp_path / "identities.parquet"
    pq.write_table(
        pa.table(
            {
                "id": ["i1", "i2", "i3", "i4", "i5"],
                "profile_id": ["pB", "pA", None, "pB", "pC"],
                "kind": ["phone", "phone", "phone", "openid", "email"],
                "weak": [False] * 5,
                "shared": [False, False, True, False, False],
                "code": pa.array([4, 0, 1, 2, 3], pa.int32()),
                "profile_code": pa.array([5, 0, None, 5, 2], pa.int32()),  # 1, 3 and 4 are no one's now
                "kind_code": places_in(pa.array(["phone", "phone", "phone", "openid", "email"]), KINDS),
            }
        ),
        path,
    )
    con = ibis.duckdb.connect()
    numbered, keys = numbered_identities(con, path, copy=copy)
    rows = {r["code"]: r for r in numbered.to_pyarrow().to_pylist()}  # i1..i5 are codes 4, 0, 1, 2, 3
    assert keys.to_pylist() == ["pA", None, "pC", None, None, "pB"]
    assert rows[1]["profile_id"] is None
    people = {i: rows[c]["profile_id"] for i, c in (("i1", 4), ("i2", 0), ("i4", 2), ("i5", 3))}
    assert people == {"i1": 5, "i2": 0, "i4": 5, "i5": 2}
    assert {i: keys[c].as_py() for i, c in people.items()} == {"i1": "pB", "i2": "pA", "i4": "pB", "i5": "pC"}
    assert [KINDS[rows[c]["kind_code"]] for c in range(5)] == ["phone", "phone", "openid", "email", "phone"]
    con.disconnect()


def test_items_made_from_the_purchases_in_memory_are_those_of_the_ids(db: Database, tmp_path: Path) -> None:
    """A run's items come from its coded purchases (joined by order code); they are the items the
    id-keyed inputs give: of paid orders only, each on its buyer."""
    ws = make_actor(db, "acme").workspace_id
    sync(db, ws, "1", "buyer1", items=[ItemIn("A", 1, 6000, 6000), ItemIn("B", 2, 2000, 4000)])
    sync(db, ws, "2", "buyer2", items=[ItemIn("C", 1, 10000, 10000)])
    sync(db, ws, "3", "buyer2", status=OrderStatus.UNPAID, items=[ItemIn("D", 1, 10000, 10000)])
    sync(db, ws, "4", "buyer1", items=[ItemIn("A", 1, 10000, 10000)])
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    con = ibis.duckdb.connect()

    def rows(table: pa.Table) -> list[tuple[object, ...]]:
        return sorted((r["profile_id"], r["sku"], r["at"]) for r in table.to_pylist())

    expected = rows(snapshot_inputs(con, tmp_path, ws).items.to_pyarrow())  # type: ignore[union-attr]
    codes = coded_snapshot_inputs(con, tmp_path, ws, {})
    made = codes.inputs(["items"])
    assert made.items is not None and "purchases" in codes.tables  # made from the purchases in memory
    assert rows(codes.decoded(made.items.to_pyarrow())) == expected
    assert [sku for _p, sku, _at in expected] == sorted(["A", "A", "B", "C"])
    # When the rules are known, only the items they ask about are kept; they select the same people.
    bought_a = parse_rule({"type": "bought", "field": "sku", "values": ["A", "Z"]})
    everything = compile_rule(bought_a, made, Moment(utcnow())).to_pyarrow().column("profile_id").combine_chunks()
    asked = coded_snapshot_inputs(con, tmp_path, ws, {}, Asked.of([bought_a]))
    kept = asked.inputs(["items"])
    assert kept.items is not None
    assert rows(asked.decoded(kept.items.to_pyarrow())) == [r for r in expected if r[1] == "A"]
    chosen = compile_rule(bought_a, kept, Moment(utcnow())).to_pyarrow().column("profile_id").combine_chunks()
    assert asked.decode(chosen).to_pylist() == codes.decode(everything).to_pylist() and len(chosen) == 1
    nothing = coded_snapshot_inputs(con, tmp_path, ws, {}, Asked.of([parse_rule(RULES["trait"])]))
    assert nothing.inputs(["items"]).items.count().to_pyarrow().as_py() == 0  # type: ignore[union-attr]
    # By category or brand (from the product list), or by a SKU it lacks: the items picked before
    # they are joined to their purchases are those the rules ask about, and select the same people.
    with db.transaction(Scope.workspace(ws)) as s:
        products = [ProductIn("A", "面霜", "护肤", "雪域", 6000), ProductIn("C", "口红", "彩妆", "花间", 10000)]
        upsert_products(s, products)
    with db.transaction(Scope.workspace(ws)) as s:  # as a run transfers: what was committed
        refresh_snapshots(s, tmp_path)
    expected = rows(snapshot_inputs(con, tmp_path, ws).items.to_pyarrow())  # type: ignore[union-attr]
    for rule, skus in (
        ({"type": "bought", "field": "category", "values": ["彩妆"]}, {"C"}),
        ({"type": "bought", "field": "brand", "values": ["雪域"]}, {"A"}),
        ({"type": "bought", "field": "sku", "values": ["B"]}, {"B"}),
    ):
        node = parse_rule(rule)
        picked = coded_snapshot_inputs(con, tmp_path, ws, {}, Asked.of([node]))
        given = picked.inputs(["items"])
        assert given.items is not None
        assert rows(picked.decoded(given.items.to_pyarrow())) == [r for r in expected if r[1] in skus]
        full = coded_snapshot_inputs(con, tmp_path, ws, {})
        every = compile_rule(node, full.inputs(["items"]), Moment(utcnow())).to_pyarrow().column("profile_id")
        some = compile_rule(node, given, Moment(utcnow())).to_pyarrow().column("profile_id")
        assert picked.decode(some.combine_chunks()).to_pylist() == full.decode(every.combine_chunks()).to_pylist()
    con.disconnect()


RULES = {
    "trait": {"type": "trait", "key": "city", "value_type": "string", "op": "eq", "value": "上海"},
    "event": {"type": "event", "event": "Order Paid", "count": 2},
    "neither": {
        "type": "not",
        "condition": {
            "type": "or",
            "conditions": [
                {"type": "trait", "key": "city", "value_type": "string", "op": "eq", "value": "上海"},
                {"type": "event", "event": "Order Paid", "count": 2},
            ],
        },
    },
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_inputs_read_in_place_give_what_their_copies_give(db: Database, tmp_path: Path, name: str) -> None:
    """A run queries traits and events from the snapshots instead of copying them in; every rule
    finds the same people either way, and nothing of them is copied."""
    ws = make_actor(db, "acme").workspace_id
    sync(db, ws, "1", "buyer1")
    sync(db, ws, "2", "buyer1")
    sync(db, ws, "3", "buyer2")
    sync(db, ws, "4", "buyer3")
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    people = sorted(snapshot_inputs(ibis.duckdb.connect(), tmp_path, ws).people.to_pyarrow().column(0).to_pylist())
    set_traits(db, ws, people[0], {"city": "上海"})
    set_traits(db, ws, people[2], {"city": "北京"})
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    node, moment = parse_rule(RULES[name]), Moment(utcnow())

    def members(in_place: frozenset[str]) -> tuple[list[str], set[str]]:
        con = ibis.duckdb.connect()
        codes = coded_snapshot_inputs(con, tmp_path, ws, {}, in_place=in_place)
        inputs = codes.inputs(["traits", "events"])
        chosen = compile_rule(node, inputs, moment).to_pyarrow().column("profile_id")
        found = sorted(codes.decode(chosen.combine_chunks()).to_pylist())
        tables = {name for (name,) in con.raw_sql("SELECT table_name FROM duckdb_tables()").fetchall()}
        con.disconnect()
        return found, tables

    copied, with_copies = members(frozenset())
    read, without = members(READ_IN_PLACE)
    assert read == copied
    assert {"coded_traits", "coded_events"} <= with_copies and not {"coded_traits", "coded_events"} & without
    # people[0] bought twice and lives in 上海; the others bought once, one of them in 北京.
    expected = {"trait": [people[0]], "event": [people[0]], "neither": people[1:]}[name]
    assert read == sorted(expected)


def test_buckets_drawn_seed_by_seed_make_one_input_and_arrays_by_code(db: Database, tmp_path: Path) -> None:
    ws = with_buyers(db, tmp_path, 4)
    con = ibis.duckdb.connect()
    codes = coded_snapshot_inputs(con, tmp_path, ws, {})

    def drawn_input() -> dict[tuple[str, str], int]:
        table = codes.inputs(["buckets"]).buckets
        assert table is not None
        rows = table.to_pyarrow().to_pylist()
        return {(r["seed"], codes.keys[r["profile_id"]].as_py()): r["bucket"] for r in rows}

    codes.draw(["ab"])
    people = [k for k in codes.keys.to_pylist() if k is not None]
    assert drawn_input() == {("ab", p): bucket_of("ab", p) for p in people}
    codes.draw(["holdout", "ab"])  # a seed more: the input holds both
    assert drawn_input() == {(seed, p): bucket_of(seed, p) for seed in ("ab", "holdout") for p in people}
    by_code = codes.buckets_by_code("holdout")
    assert {codes.keys[c].as_py(): int(b) for c, b in enumerate(by_code) if b >= 0} == {
        p: bucket_of("holdout", p) for p in people
    }
    con.disconnect()


def test_purchases_keep_their_store_only_when_a_rule_names_one_and_their_platform_as_a_code(
    db: Database, tmp_path: Path
) -> None:
    ws = make_actor(db, "acme").workspace_id
    sync(db, ws, "1", "buyer1", store="京东店", platform="jd")
    sync(db, ws, "2", "buyer2", store="旗舰店")
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    in_store = {"type": "orders", "value": 1, "store": "京东店"}
    by_store, any_order = parse_rule(in_store), parse_rule({"type": "orders", "value": 1})
    assert names_a_store([parse_rule({"type": "not", "condition": in_store})])
    assert Asked.of([any_order, by_store]).stores and not Asked.of([any_order]).stores
    con = ibis.duckdb.connect()
    plain = coded_snapshot_inputs(con, tmp_path, ws, {}, Asked.of([any_order])).inputs(["purchases"]).purchases
    assert plain is not None and "store" not in plain.columns and "platform" in plain.columns
    codes = coded_snapshot_inputs(con, tmp_path, ws, {}, Asked.of([any_order, by_store]))
    chosen = compile_rule(by_store, codes.inputs(["purchases"]), Moment(utcnow())).to_pyarrow()
    bought = snapshot_inputs(con, tmp_path, ws).purchases
    assert bought is not None
    there = bought.filter(bought.store == "京东店").profile_id.to_pyarrow().to_pylist()
    assert codes.decode(chosen.column("profile_id").combine_chunks()).to_pylist() == there and len(there) == 1
    # Kept with each platform's code, named as read: the same platforms as the ids' inputs.
    kept = con.table("coded_purchases")
    assert kept.schema()["platform_code"].is_integer() and "platform" not in kept.columns
    named = plain.to_pyarrow()
    by_code = dict(
        zip(
            codes.decode(named.column("profile_id").combine_chunks()).to_pylist(),
            named.column("platform").to_pylist(),
            strict=True,
        )
    )
    assert by_code == dict(zip(*bought.select("profile_id", "platform").to_pyarrow().to_pydict().values(), strict=True))
    assert set(by_code.values()) == {"jd", "tmall"}
    on_jd = compile_rule(
        parse_rule({"type": "orders", "value": 1, "platform": "jd"}), codes.inputs(["purchases"]), Moment(utcnow())
    )
    assert codes.decode(on_jd.to_pyarrow().column("profile_id").combine_chunks()).to_pylist() == there


def test_segment_members_are_coded_and_those_no_longer_there_leave(db: Database, tmp_path: Path) -> None:
    """Who is in each segment now, by id, is coded in one join to the people: members still there
    are compared as codes; members merged away or erased since leave."""
    ws, con, (first, second) = two_buyers(db, tmp_path)
    codes = coded_snapshot_inputs(con, tmp_path, ws, {})
    spec = SegmentSpec("sg_a", "bought", {"type": "orders", "value": 1})
    members = pa.table({"profile_id": [first, "pf_gone"], "segment_id": ["sg_a", "sg_a"]})
    [changes] = segment_changes([spec], codes, Moment(utcnow()), members).values()
    assert (changes.size, changes.entered_ids(), changes.exited_ids()) == (2, [second], ["pf_gone"])
    nobody = members.schema.empty_table()
    [fresh] = segment_changes([spec], codes, Moment(utcnow()), nobody).values()
    assert sorted(fresh.entered_ids()) == [first, second] and fresh.exited_ids() == []
    # Those who enter are codes into everyone's ids, none copied.
    assert pa.types.is_dictionary(fresh.entered.type) and fresh.entered.dictionary.equals(codes.keys)
    con.disconnect()


def test_reach_kept_with_codes_names_what_the_ids_inputs_name(db: Database, tmp_path: Path) -> None:
    """Who can be sent to where: the latest record per identifier, channel and purpose counts, a
    channel needs its kind of address (ads take any); a run keeps channels and purposes as codes
    and names them as read, the same rows as the ids' inputs."""
    ws = make_actor(db, "acme").workspace_id
    for n in (1, 2, 3):
        sync(db, ws, str(n), f"buyer{n}")
    with db.transaction(Scope.workspace(ws)) as s:
        for n in (1, 2):
            phone = normalise(IdentifierKind.PHONE, f"1381234567{n}")
            outcome = observe_many(s, [[normalise(IdentifierKind.TAOBAO_NICK, f"buyer{n}", "tmall"), phone]])
            apply_identity_outcome(s, outcome.new_profile_ids, outcome.changes)
        held = {i.value: (i.id, i.profile_id) for i in s.scalars(select(Identity))}
        phones = {f"buyer{n}": held[f"+861381234567{n}"][0] for n in (1, 2)}
        nick3 = held["buyer3"][0]
        t0 = utcnow() - timedelta(days=2)

        def record(identity: str, channel: Channel, purpose: Purpose, status: ConsentStatus, at: datetime) -> None:
            record_consents(s, [ConsentIn(identity, channel, purpose, status, at, "test", {"text_version": "v1"})])

        record(phones["buyer1"], Channel.SMS, Purpose.MARKETING, ConsentStatus.GRANTED, t0)
        record(phones["buyer1"], Channel.SMS, Purpose.MARKETING, ConsentStatus.WITHDRAWN, t0 + timedelta(hours=1))
        record(phones["buyer2"], Channel.SMS, Purpose.MARKETING, ConsentStatus.GRANTED, t0)
        record(phones["buyer2"], Channel.ADS, Purpose.AUDIENCE_UPLOAD, ConsentStatus.GRANTED, t0)
        record(nick3, Channel.SMS, Purpose.MARKETING, ConsentStatus.GRANTED, t0)  # not an address for SMS
        record(nick3, Channel.ADS, Purpose.AUDIENCE_UPLOAD, ConsentStatus.GRANTED, t0)
    with db.transaction(Scope.workspace(ws)) as s:  # as a run transfers: what was committed
        refresh_snapshots(s, tmp_path)
    person = {buyer: held[buyer][1] for buyer in ("buyer2", "buyer3")}
    expected = {
        (person["buyer2"], "sms", "marketing"),
        (person["buyer2"], "ads", "audience_upload"),
        (person["buyer3"], "ads", "audience_upload"),
    }
    con = ibis.duckdb.connect()
    by_ids = snapshot_inputs(con, tmp_path, ws).reach
    assert by_ids is not None
    assert {tuple(r.values()) for r in by_ids.to_pyarrow().to_pylist()} == expected
    codes = coded_snapshot_inputs(con, tmp_path, ws, {})
    assert reached(codes) == expected
    kept = codes.arrays["reach"].schema  # made from the latest records, in arrays
    assert kept.field("channel_code").type == pa.int8() and "channel" not in kept.names
    # A file from before, which keeps the whole ledger, is ranked as it is read: the same rows.
    path = snapshot_path(tmp_path, ws, "consents")
    ledger = pq.read_table(path)
    metadata = {k: v for k, v in (ledger.schema.metadata or {}).items() if k != LATEST_KEY}
    pq.write_table(ledger.replace_schema_metadata(metadata), path)
    older = coded_snapshot_inputs(con, tmp_path, ws, {})
    assert "reach" not in older.made and reached(older) == expected
    con.disconnect()


def reached(codes: Coded) -> set[tuple[str, str, str]]:
    """(person's id, channel, purpose) of the coded reach input."""
    reach = codes.inputs(["reach"]).reach
    assert reach is not None
    table = reach.to_pyarrow()
    ids = codes.decode(table.column("profile_id").combine_chunks()).to_pylist()
    return set(zip(ids, table.column("channel").to_pylist(), table.column("purpose").to_pylist(), strict=True))


def test_only_the_tags_the_rules_ask_about_are_coded(db: Database, tmp_path: Path) -> None:
    ws, con, (first, second) = two_buyers(db, tmp_path)
    held = pa.table({"profile_id": [first, second, second], "tag_id": ["tg_a", "tg_b", "tg_a"], "value": [""] * 3})
    rule = parse_rule({"type": "tag", "tag_id": "tg_b"})
    codes = coded_snapshot_inputs(con, tmp_path, ws, {"tags": held}, Asked.of([rule]))
    given = codes.inputs(["tags"])
    assert given.tags is not None
    assert codes.decoded(given.tags.to_pyarrow()).select(["profile_id", "tag_id"]).to_pylist() == [
        {"profile_id": second, "tag_id": "tg_b"}
    ]
    chosen = compile_rule(rule, given, Moment(utcnow())).to_pyarrow().column("profile_id").combine_chunks()
    assert codes.decode(chosen).to_pylist() == [second]
    con.disconnect()


def two_buyers(db: Database, tmp_path: Path) -> tuple[str, Any, list[str]]:
    """A workspace of two buyers, transferred; an engine; the two people's ids, in order."""
    ws = make_actor(db, "acme").workspace_id
    sync(db, ws, "1", "buyer1")
    sync(db, ws, "2", "buyer2")
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    con = ibis.duckdb.connect()
    return ws, con, sorted(snapshot_inputs(con, tmp_path, ws).people.to_pyarrow().column("profile_id").to_pylist())


def test_a_run_counts_events_by_identifier_and_the_preview_does_not(db: Database, tmp_path: Path) -> None:
    """A run, reading the events in place, is given the event log as kept (``RuleInputs.keyed``):
    its rows by identifier, with each identifier's person's code; the preview is not."""
    ws, con, _buyers = two_buyers(db, tmp_path)
    keyed = coded_snapshot_inputs(con, tmp_path, ws, {}, in_place=READ_IN_PLACE).inputs(["events"]).keyed["events"]
    identities = pq.read_table(snapshot_path(tmp_path, ws, "identities"))
    codes, persons = identities.column("code").to_pylist(), identities.column("profile_code").to_pylist()
    assert [int(keyed.people[c]) for c in codes] == [-1 if p is None else p for p in persons] and len(codes) >= 2
    assert keyed.key == "identity_code" and "identity_code" in keyed.rows.columns
    assert coded_snapshot_inputs(con, tmp_path, ws, {}).inputs(["events"]).keyed == {}
    con.disconnect()
