"""The batch engine's snapshots of the store: typed Arrow from SQLite and PostgreSQL alike, only
one workspace's rows, and incremental transfers that move only what changed yet end equal to a
full copy — new orders, status changes, replaced items and merged people included."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, update

from siyu.analytics.snapshots import (
    ENUMERATED_KEY,
    KINDS,
    LATEST_KEY,
    OVERLAP,
    PLATFORMS,
    UNCLUSTERED_KEY,
    changed_through,
    numbering_of,
    refresh_snapshots,
    snapshot_path,
)
from siyu.commerce.contracts import OrderStatus
from siyu.commerce.orders import ItemIn, OrderIn
from siyu.commerce.tables import Order
from siyu.core.clock import utcnow
from siyu.identity.contracts import IdentifierKind
from siyu.identity.normalise import normalise
from siyu.identity.resolver import observe_many
from siyu.identity.tables import Identity
from siyu.ingest.orders import OrderSync, sync_orders
from siyu.profiles.consent import Channel, ConsentIn, ConsentStatus, Purpose, record_consents
from siyu.profiles.facade import apply_identity_outcome
from siyu.profiles.tables import Profile
from siyu.storage.arrow_transfer import TIMESTAMP, read_arrow
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import make_actor

T0 = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)


def sync(
    db: Database,
    workspace: str,
    no: str,
    buyer: str,
    status: OrderStatus = OrderStatus.PAID,
    paid: int = 10000,
    items: list[ItemIn] | None = None,
    store: str = "",
    platform: str = "tmall",
) -> None:
    order = OrderIn(
        platform=platform,
        store=store,
        order_no=no,
        status=status,
        total_fen=paid,
        paid_fen=paid if status is not OrderStatus.UNPAID else 0,
        ordered_at=T0,
        buyer_kind="taobao_nick",
        buyer_id=buyer,
        buyer_identity_id=None,
        status_at=T0 + timedelta(hours=1),
        items=items or [ItemIn("SKU1", 1, paid, paid)],
    )
    with db.transaction(Scope.workspace(workspace)) as s:
        sync_orders(s, [OrderSync(order, IdentifierKind.TAOBAO_NICK, buyer)], utcnow())


def with_buyers(db: Database, tmp: Path, buyers: int) -> str:
    """A new workspace whose ``buyers`` people bought once each, transferred once."""
    ws = make_actor(db, "acme").workspace_id
    for n in range(buyers):
        sync(db, ws, str(n), f"buyer{n}")
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp)
    return ws


def merge(
    db: Database, workspace: str, *buyers: str, kind: IdentifierKind = IdentifierKind.TAOBAO_NICK, scope: str = "tmall"
) -> None:
    """One phone joins the buyers' identifiers: they become one person."""
    with db.transaction(Scope.workspace(workspace)) as s:
        phone = normalise(IdentifierKind.PHONE, "13812345678")
        merged = observe_many(s, [[normalise(kind, buyer, scope), phone] for buyer in buyers])
        apply_identity_outcome(s, merged.new_profile_ids, merged.changes)


def snapshot(tmp: Path, workspace: str, source: str) -> list[dict[str, object]]:
    table = pq.read_table(snapshot_path(tmp, workspace, source))
    key = "id"
    return sorted(table.to_pylist(), key=lambda r: str(r[key]))


def test_rows_come_typed_and_scoped_to_the_workspace(db: Database) -> None:
    a, b = make_actor(db, "acme"), make_actor(db, "other")
    sync(db, a.workspace_id, "1", "小兔", paid=25800)
    sync(db, b.workspace_id, "2", "小熊")
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        orders = read_arrow(s, Order, ("id", "order_no", "paid_fen", "ordered_at", "cancelled_at"))
    assert orders.schema.field("paid_fen").type == pa.int64()
    assert orders.schema.field("ordered_at").type == TIMESTAMP
    assert orders.column("order_no").to_pylist() == ["1"]
    assert orders.column("paid_fen").to_pylist() == [25800]
    assert orders.column("ordered_at").to_pylist() == [T0]
    assert orders.column("cancelled_at").to_pylist() == [None]


def test_an_incremental_transfer_moves_only_changes_and_ends_equal_to_a_full_copy(db: Database, tmp_path: Path) -> None:
    a = make_actor(db, "acme")
    ws = a.workspace_id
    for n in range(5):
        sync(db, ws, str(n), f"buyer{n}", status=OrderStatus.UNPAID)
    with db.transaction(Scope.workspace(ws)) as s:
        first = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert first["orders"].full and first["orders"].rows_moved == 5
    assert first["order_items"].rows_held == 5
    assert first["identities"].rows_held == 5
    mark = changed_through(snapshot_path(tmp_path, ws, "orders"))
    assert mark is not None
    people_before = {r["profile_id"]: r["profile_code"] for r in snapshot(tmp_path, ws, "identities")}
    assert sorted(people_before.values()) == [0, 1, 2, 3, 4]

    # The next transfer looks back OVERLAP from the last one's start; pretend that was long ago
    # for the rows written so far, so that only what changes now is "changed".
    age_everything(db, ws, tmp_path)

    sync(db, ws, "1", "buyer1", status=OrderStatus.PAID)  # a status change
    sync(db, ws, "2", "buyer2", status=OrderStatus.UNPAID, items=[ItemIn("SKU9", 2, 5000, 10000)])  # new items
    sync(db, ws, "9", "buyer9")  # a new order, a new person
    merge(db, ws, "buyer3", "buyer4")
    with db.transaction(Scope.workspace(ws)) as s:
        second = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert not second["orders"].full
    assert second["orders"].rows_moved == 3
    assert second["orders"].rows_held == 6
    assert second["order_items"].rows_moved == 3  # the items of the three orders that moved
    assert second["order_items"].rows_held == 6
    assert second["identities"].rows_moved == 3  # buyer9, the phone, and buyer3 or buyer4 moved
    incremental = {name: snapshot(tmp_path, ws, name) for name in ("orders", "order_items", "identities")}

    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path, full=True)
    for name, rows in incremental.items():
        assert rows == snapshot(tmp_path, ws, name), name
    profiles = {r["profile_id"] for r in incremental["identities"]}
    assert len(profiles) == 5  # six buyers, two of them one person
    by_no = {r["id"]: r for r in incremental["orders"]}
    assert sorted(r["status"] for r in by_no.values()) == ["paid", "paid", "unpaid", "unpaid", "unpaid", "unpaid"]
    assert sorted(r["sku"] for r in incremental["order_items"]) == ["SKU1"] * 5 + ["SKU9"]
    assert_buyers_coded(incremental["orders"], incremental["identities"])
    assert_items_coded(incremental["order_items"], incremental["orders"])
    # People keep their codes: the merged person has one of the two, the new one the next free.
    people_after = assert_people_coded(incremental["identities"])
    kept = {p: c for p, c in people_after.items() if p in people_before}
    assert kept == {p: c for p, c in people_before.items() if p in people_after}
    assert len(kept) == 4 and set(people_after.values()) - set(kept.values()) == {5}


def assert_people_coded(identities: list[dict[str, object]]) -> dict[object, object]:
    """Every person has one code, no two people the same, and identifiers of no one none; returns
    each person's."""
    code_of = {r["profile_id"]: r["profile_code"] for r in identities if r["profile_id"] is not None}
    assert all(r["profile_code"] == code_of[r["profile_id"]] for r in identities if r["profile_id"] is not None)
    assert all(r["profile_code"] is None for r in identities if r["profile_id"] is None)
    assert len(set(code_of.values())) == len(code_of)
    return code_of


def assert_items_coded(items: list[dict[str, object]], orders: list[dict[str, object]]) -> None:
    """Every order has its own code, and every order item its order's."""
    code_of = {r["id"]: r["code"] for r in orders}
    assert len(set(code_of.values())) == len(code_of)
    assert all(isinstance(c, int) and c >= 0 for c in code_of.values())
    assert [r["order_code"] for r in items] == [code_of[r["order_id"]] for r in items]


def assert_buyers_coded(orders: list[dict[str, object]], identities: list[dict[str, object]]) -> None:
    """Every identifier has its own code, and every order its buyer's."""
    code_of = {r["id"]: r["code"] for r in identities}
    assert len(set(code_of.values())) == len(code_of)
    assert all(isinstance(c, int) and c >= 0 for c in code_of.values())
    assert {r["id"]: r["buyer_code"] for r in orders} == {r["id"]: code_of[r["buyer_identity_id"]] for r in orders}


def test_identifiers_keep_their_codes_and_a_code_is_never_given_twice(db: Database, tmp_path: Path) -> None:
    ws = with_buyers(db, tmp_path, 3)
    path = snapshot_path(tmp_path, ws, "identities")
    first = {r["id"]: r["code"] for r in snapshot(tmp_path, ws, "identities")}
    assert sorted(first.values()) == [0, 1, 2]
    numbering = numbering_of(path)
    assert numbering  # which numbering of the people the codes are
    # Drop the identifier with the highest code from the file, as if it were gone from the store:
    # its code is not given to the next new identifier.
    table = pq.read_table(path)
    kept = table.filter(pc.less(table.column("code"), 2))
    pq.write_table(kept.replace_schema_metadata(table.schema.metadata), path)
    age_everything(db, ws, tmp_path)
    sync(db, ws, "3", "buyer3")
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    second = {r["id"]: r["code"] for r in snapshot(tmp_path, ws, "identities")}
    assert {k: v for k, v in second.items() if k in first} == {k: v for k, v in first.items() if v < 2}
    [new] = set(second) - set(first)
    assert second[new] == 3
    orders = snapshot(tmp_path, ws, "orders")
    [orphan] = [r for r in orders if r["buyer_identity_id"] not in second]  # its buyer is no one now
    assert orphan["buyer_code"] == 2
    assert_buyers_coded([r for r in orders if r is not orphan], snapshot(tmp_path, ws, "identities"))

    assert numbering_of(path) == numbering  # the same people, the same codes

    # Without the identifiers' file the codes are drawn afresh, so every order moves again.
    path.unlink()
    with db.transaction(Scope.workspace(ws)) as s:
        third = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert numbering_of(path) not in ("", numbering)
    assert third["identities"].full and third["orders"].full and third["orders"].rows_moved == 4
    assert_buyers_coded(snapshot(tmp_path, ws, "orders"), snapshot(tmp_path, ws, "identities"))
    before = {r["id"]: r["code"] for r in snapshot(tmp_path, ws, "orders")}

    # Likewise without the orders' file: the orders are numbered afresh and every item moves again.
    age_everything(db, ws, tmp_path)
    snapshot_path(tmp_path, ws, "orders").unlink()
    with db.transaction(Scope.workspace(ws)) as s:
        fourth = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert fourth["orders"].full and fourth["order_items"].full and fourth["order_items"].rows_moved == 4
    assert sorted(r["code"] for r in snapshot(tmp_path, ws, "orders")) == sorted(before.values())
    assert_items_coded(snapshot(tmp_path, ws, "order_items"), snapshot(tmp_path, ws, "orders"))


def age_everything(db: Database, workspace: str, data_dir: Path) -> None:
    """Date the workspace's rows and its last transfer long ago, as if nothing changed since."""
    long_ago = utcnow() - 3 * OVERLAP
    with db.transaction(Scope.workspace(workspace)) as s:
        for model in (Order, Identity):
            s.execute(update(model).values(changed_at=long_ago))
        s.execute(update(Profile).values(updated_at=long_ago))
    for name in ("orders", "order_items", "identities", "traits"):
        path = snapshot_path(data_dir, workspace, name)
        table = pq.read_table(path)
        metadata = dict(table.schema.metadata or {})
        metadata[b"siyu.changed_through"] = (long_ago + OVERLAP).isoformat().encode()
        pq.write_table(table.replace_schema_metadata(metadata), path)


def test_each_buyers_orders_are_kept_together(db: Database, tmp_path: Path) -> None:
    ws = make_actor(db, "acme").workspace_id
    for n in range(16):
        sync(db, ws, str(n), f"buyer{n % 4}")  # four buyers, their orders interleaved
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    path = snapshot_path(tmp_path, ws, "orders")
    first = pq.read_table(path).column("buyer_code").to_pylist()
    assert first == sorted(first) and len(set(first)) == 4
    assert (pq.read_schema(path).metadata or {})[UNCLUSTERED_KEY] == b"0"
    before = snapshot(tmp_path, ws, "orders")
    code_of = {r["buyer_identity_id"]: r["buyer_code"] for r in before}

    age_everything(db, ws, tmp_path)
    sync(db, ws, "16", "buyer2")  # one row in 17 trails behind the rows in order
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    second = pq.read_table(path).column("buyer_code").to_pylist()
    [new] = [r for r in snapshot(tmp_path, ws, "orders") if r not in before]
    assert second[:16] == first and second[16:] == [new["buyer_code"]] and first.count(new["buyer_code"]) == 4
    assert (pq.read_schema(path).metadata or {})[UNCLUSTERED_KEY] == b"1"

    age_everything(db, ws, tmp_path)
    sync(db, ws, "17", "buyer3")  # three in 19 would trail behind: more than an eighth
    sync(db, ws, "0", "buyer0", status=OrderStatus.COMPLETED)  # a change moves a row too
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    third = pq.read_table(path).column("buyer_code").to_pylist()
    assert third == sorted(third) and len(third) == 18
    assert (pq.read_schema(path).metadata or {})[UNCLUSTERED_KEY] == b"0"
    rows = snapshot(tmp_path, ws, "orders")
    assert all(r["buyer_code"] == code_of[r["buyer_identity_id"]] for r in rows)
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path, full=True)
    assert snapshot(tmp_path, ws, "orders") == rows


def test_each_keys_traits_and_each_events_rows_are_kept_together(db: Database, tmp_path: Path) -> None:
    """A rule on traits asks about one key, a rule on events about one event: the traits' file
    keeps each key's rows together, the events' file each event's, so a scan for one skips the
    row groups of the others; rows later transfers bring trail behind, each key's together."""
    ws = make_actor(db, "acme").workspace_id
    for n in range(4):
        sync(db, ws, str(n), f"buyer{n}")  # each an order paid: an event each
    with db.read(Scope.workspace(ws)) as s:
        people = sorted(s.scalars(select(Profile.id)))
    for n, p in enumerate(people):
        set_traits(db, ws, p, {"city": "上海", "age": 20 + n, "vip": n % 2 == 0})
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    keys = [k for k in pq.read_table(snapshot_path(tmp_path, ws, "traits")).column("key").to_pylist() if k]
    assert keys == sorted(keys) and len(set(keys)) == 3 and len(keys) == 12
    events = pq.read_table(snapshot_path(tmp_path, ws, "events")).column("event").to_pylist()
    assert events == sorted(events) and len(events) >= 4
    for source in ("traits", "events"):
        assert (pq.read_schema(snapshot_path(tmp_path, ws, source)).metadata or {})[UNCLUSTERED_KEY] == b"0"
    age_everything(db, ws, tmp_path)
    set_traits(db, ws, people[0], {"city": "北京"})  # its traits now: the one row trails behind
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    after = [k for k in pq.read_table(snapshot_path(tmp_path, ws, "traits")).column("key").to_pylist() if k]
    assert after[:9] == sorted(after[:9]) and after[9:] == ["city"]


def test_each_orders_platform_is_kept_as_its_place_too(db: Database, tmp_path: Path) -> None:
    """A run keeps each purchase's platform as a byte: the file carries each order's platform's
    place among PLATFORMS beside its name (and each identifier's kind its place among KINDS).
    A file from before gets it on the next transfer, which moves every order again."""
    ws = make_actor(db, "acme").workspace_id
    sync(db, ws, "1", "buyer1", platform="jd")
    sync(db, ws, "2", "buyer2", platform="douyin")
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    rows = snapshot(tmp_path, ws, "orders")
    assert [(r["platform"], r["platform_code"]) for r in rows] == [
        ("jd", PLATFORMS.index("jd")),
        ("douyin", PLATFORMS.index("douyin")),
    ]
    assert pq.read_schema(snapshot_path(tmp_path, ws, "orders")).field("platform_code").type == pa.int8()
    # So are an identifier's kind, and a consent record's channel, purpose and status.
    assert all(KINDS[r["kind_code"]] == r["kind"] for r in snapshot(tmp_path, ws, "identities"))
    assert {"channel_code", "purpose_code", "status_code"} <= set(
        pq.read_schema(snapshot_path(tmp_path, ws, "consents")).names
    )
    path = snapshot_path(tmp_path, ws, "orders")
    before = pq.read_table(path)
    older = before.drop_columns(["platform_code"])
    pq.write_table(older.replace_schema_metadata(before.schema.metadata), path)
    with db.transaction(Scope.workspace(ws)) as s:
        moved = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert moved["orders"].full and moved["orders"].rows_moved == 2
    assert snapshot(tmp_path, ws, "orders") == rows
    # Codes counted in another list of platforms (one was inserted before "jd", say) are of no
    # use: the file is written anew too.
    before = pq.read_table(path)
    other = {**(before.schema.metadata or {}), ENUMERATED_KEY: b'{"platform_code": ["jd", "tmall"]}'}
    pq.write_table(before.replace_schema_metadata(other), path)
    with db.transaction(Scope.workspace(ws)) as s:
        moved = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert moved["orders"].full and snapshot(tmp_path, ws, "orders") == rows
    with db.transaction(Scope.workspace(ws)) as s:
        moved = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert not moved["orders"].full  # the lists are the file's again


def test_consents_keep_each_identifiers_latest_record_per_channel_and_purpose(db: Database, tmp_path: Path) -> None:
    """Only the last word on a channel and purpose counts: the file keeps it alone, whether it
    came in the same transfer as the words before or after them, and a record dated before the
    one kept (an older consent imported late) does not displace it. An incremental transfer
    ends as a full one does; a file keeping other rows (a whole ledger) is written anew."""
    ws = make_actor(db, "acme").workspace_id
    sync(db, ws, "1", "buyer1")
    sync(db, ws, "2", "buyer2")
    with db.transaction(Scope.workspace(ws)) as s:
        nick = {i.value: i.id for i in s.scalars(select(Identity))}
        one, two = nick["buyer1"], nick["buyer2"]
        granted, withdrawn = ConsentStatus.GRANTED, ConsentStatus.WITHDRAWN

        def record(identity: str, channel: Channel, purpose: Purpose, status: ConsentStatus, hours: int) -> None:
            at = T0 + timedelta(hours=hours)
            record_consents(s, [ConsentIn(identity, channel, purpose, status, at, "test", {"text_version": "v1"})])

        record(one, Channel.SMS, Purpose.MARKETING, granted, 0)
        record(one, Channel.SMS, Purpose.MARKETING, withdrawn, 1)  # the last word, in the same transfer
        record(one, Channel.ADS, Purpose.AUDIENCE_UPLOAD, granted, 0)
        record(two, Channel.SMS, Purpose.MARKETING, granted, 5)
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)

    def kept() -> set[tuple[object, ...]]:
        rows = snapshot(tmp_path, ws, "consents")
        return {(r["identity_id"], r["channel"], r["purpose"], r["status"], r["at"]) for r in rows}

    at = T0.replace(tzinfo=None)
    assert kept() == {
        (one, "sms", "marketing", "withdrawn", at + timedelta(hours=1)),
        (one, "ads", "audience_upload", "granted", at),
        (two, "sms", "marketing", "granted", at + timedelta(hours=5)),
    }
    with db.transaction(Scope.workspace(ws)) as s:
        record(one, Channel.SMS, Purpose.MARKETING, granted, 2)  # granted again, in a later transfer
        record(two, Channel.SMS, Purpose.MARKETING, withdrawn, 3)  # older than the grant kept
        record(two, Channel.EMAIL, Purpose.MARKETING, granted, 0)  # a new key
    with db.transaction(Scope.workspace(ws)) as s:
        moved = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert not moved["consents"].full and moved["consents"].rows_held == 4
    incremental = kept()
    assert incremental == {
        (one, "sms", "marketing", "granted", at + timedelta(hours=2)),
        (one, "ads", "audience_upload", "granted", at),
        (two, "sms", "marketing", "granted", at + timedelta(hours=5)),
        (two, "email", "marketing", "granted", at),
    }
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path, full=True)
    assert kept() == incremental
    # A file from before, which kept the whole ledger, is written anew on the next transfer.
    path = snapshot_path(tmp_path, ws, "consents")
    before = pq.read_table(path)
    metadata = {k: v for k, v in (before.schema.metadata or {}).items() if k != LATEST_KEY}
    pq.write_table(before.replace_schema_metadata(metadata), path)
    with db.transaction(Scope.workspace(ws)) as s:
        moved = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert moved["consents"].full and kept() == incremental


@pytest.mark.parametrize("bad", ["nope"])
def test_reading_an_unknown_column_is_refused(db: Database, bad: str) -> None:
    a = make_actor(db, "acme")
    with db.transaction(Scope.workspace(a.workspace_id)) as s, pytest.raises(ValueError, match="no column"):
        read_arrow(s, Order, ("id", bad))


def test_events_move_by_their_time_sortable_ids(db: Database, tmp_path: Path) -> None:
    ws = make_actor(db, "acme").workspace_id
    sync(db, ws, "1", "小兔")  # its status change is an event ("Order Paid")
    with db.transaction(Scope.workspace(ws)) as s:
        first = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert first["events"].rows_held == 1
    sync(db, ws, "2", "小熊")
    with db.transaction(Scope.workspace(ws)) as s:
        second = {t.source: t for t in refresh_snapshots(s, tmp_path, overlap=timedelta(0))}
    assert (second["events"].rows_moved, second["events"].rows_held, second["events"].full) == (1, 2, False)
    names = sorted(r["event"] for r in snapshot(tmp_path, ws, "events"))
    assert names == ["Order Paid", "Order Paid"]


def test_events_carry_their_identifiers_code_once_it_has_come(db: Database, tmp_path: Path) -> None:
    ws = make_actor(db, "acme").workspace_id
    sync(db, ws, "1", "小兔")
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    # An event whose identifier has not come yet (as if it were written between the two reads).
    path = snapshot_path(tmp_path, ws, "identities")
    kept = pq.read_table(path)
    pq.write_table(kept.slice(0, 0).replace_schema_metadata(kept.schema.metadata), path)
    age_everything(db, ws, tmp_path)
    sync(db, ws, "2", "小熊")
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    assert sorted(r["identity_code"] is None for r in snapshot(tmp_path, ws, "events")) == [False, True]
    # The next transfer brings the identifier, and the event its code, though the event does not
    # move again (no overlap: SQLite dates the identifier's change to the whole second, a later one).
    time.sleep(1.1)
    with db.transaction(Scope.workspace(ws)) as s:
        s.execute(update(Identity).values(changed_at=utcnow()))
    with db.transaction(Scope.workspace(ws)) as s:
        second = {t.source: t for t in refresh_snapshots(s, tmp_path, overlap=timedelta(0))}
    assert second["identities"].rows_moved == 2
    assert (second["events"].rows_moved, second["events"].rows_held, second["events"].full) == (0, 2, False)
    events = snapshot(tmp_path, ws, "events")
    code_of = {r["id"]: r["code"] for r in snapshot(tmp_path, ws, "identities")}
    assert [r["identity_code"] for r in events] == [code_of[r["identity_id"]] for r in events]
    assert len(set(code_of.values())) == 2
    # Drawn afresh, the codes move every event again.
    path.unlink()
    with db.transaction(Scope.workspace(ws)) as s:
        third = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert (third["events"].rows_moved, third["events"].full) == (2, True)
    events = snapshot(tmp_path, ws, "events")
    code_of = {r["id"]: r["code"] for r in snapshot(tmp_path, ws, "identities")}
    assert [r["identity_code"] for r in events] == [code_of[r["identity_id"]] for r in events]


def set_traits(db: Database, workspace: str, profile_id: str, traits: dict[str, object]) -> None:
    with db.transaction(Scope.workspace(workspace)) as s:
        s.execute(update(Profile).where(Profile.id == profile_id).values(traits=traits, updated_at=utcnow()))


def trait_snapshot(tmp: Path, workspace: str) -> list[tuple[object, ...]]:
    rows = pq.read_table(snapshot_path(tmp, workspace, "traits")).to_pylist()
    return sorted((tuple(r.values()) for r in rows), key=str)


def test_traits_move_as_typed_rows_and_only_the_changed_profiles_move(db: Database, tmp_path: Path) -> None:
    a = make_actor(db, "acme")
    ws = a.workspace_id
    for n in range(3):
        sync(db, ws, str(n), f"buyer{n}")
    with db.read(Scope.workspace(ws)) as s:
        p1, p2, p3 = sorted(s.scalars(select(Profile.id)))
    set_traits(db, ws, p1, {"city": "上海", "age": 30, "birthday": "1995-03-02", "likes": ["茶", 7], "vip": True})
    with db.transaction(Scope.workspace(ws)) as s:
        first = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert first["traits"].rows_moved == 3
    rows = {
        (r[0], r[1]): r for r in trait_snapshot(tmp_path, ws) if r[0] == p1 and r[1] is not None and r[1] != "likes"
    }
    assert rows[(p1, "city")][2:7] == ("s", "上海", None, None, None)
    assert rows[(p1, "age")][2:7] == ("n", None, 30.0, None, None)
    assert rows[(p1, "birthday")][2:7] == (
        "d",
        "1995-03-02",
        None,
        datetime(1995, 3, 1, 16, 0),
        None,
    )  # Shanghai's midnight
    assert rows[(p1, "vip")][2:7] == ("b", None, None, None, True)
    likes = sorted(r[3] for r in trait_snapshot(tmp_path, ws) if r[1] == "likes")
    assert likes == ["7", "茶"]
    assert_traits_coded(tmp_path, ws)

    age_everything(db, ws, tmp_path)
    set_traits(db, ws, p1, {"city": "北京"})
    set_traits(db, ws, p2, {"level": 3})
    with db.transaction(Scope.workspace(ws)) as s:
        second = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert not second["traits"].full and second["traits"].rows_moved == 2
    incremental = trait_snapshot(tmp_path, ws)
    assert [(r[1], r[3]) for r in incremental if r[0] == p1] == [("city", "北京"), (None, None)]
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path, full=True)
    assert incremental == trait_snapshot(tmp_path, ws)
    assert [r for r in incremental if r[0] == p3 and r[1] is not None] == []
    assert_traits_coded(tmp_path, ws)
    # Should the people be numbered afresh, every trait row moves again with its new code.
    snapshot_path(tmp_path, ws, "identities").unlink()
    with db.transaction(Scope.workspace(ws)) as s:
        third = {t.source: t for t in refresh_snapshots(s, tmp_path)}
    assert third["traits"].full and third["traits"].rows_moved == 3
    assert_traits_coded(tmp_path, ws)


def test_trait_rows_of_people_merged_away_leave_with_them(db: Database, tmp_path: Path) -> None:
    ws = make_actor(db, "acme").workspace_id
    for n in range(3):
        sync(db, ws, str(n), f"buyer{n}")
    with db.read(Scope.workspace(ws)) as s:
        before = set(s.scalars(select(Profile.id)))
    for profile_id in before:
        set_traits(db, ws, profile_id, {"city": "上海"})
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    assert {r[0] for r in trait_snapshot(tmp_path, ws)} == before

    age_everything(db, ws, tmp_path)
    merge(db, ws, "buyer0", "buyer1")
    with db.read(Scope.workspace(ws)) as s:
        after = set(s.scalars(select(Profile.id)))
    assert len(after) == 2 and after < before
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path)
    incremental = trait_snapshot(tmp_path, ws)
    assert {r[0] for r in incremental} == after
    assert_traits_coded(tmp_path, ws)
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, tmp_path, full=True)
    assert trait_snapshot(tmp_path, ws) == incremental


def assert_traits_coded(tmp: Path, workspace: str) -> None:
    """Every trait row carries its person's code, as the identifiers have it."""
    code_of = {r["profile_id"]: r["profile_code"] for r in snapshot(tmp, workspace, "identities")}
    rows = pq.read_table(snapshot_path(tmp, workspace, "traits")).to_pylist()
    assert rows and all(r["profile_code"] == code_of[r["profile_id"]] for r in rows)
