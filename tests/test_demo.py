"""The synthetic brand: deterministic, realistic, streamable, and loadable into a workspace."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from siyu.demo.generator import CHUNK_PEOPLE, SyntheticBrand
from siyu.demo.seed import seed_brand
from siyu.demo.writer import write_brand
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import make_actor

UNTIL = datetime(2026, 11, 1, tzinfo=UTC)


def _all(brand: SyntheticBrand) -> dict[str, pa.Table]:
    chunks = list(brand.chunks())
    return {
        name: pa.concat_tables([getattr(c, name) for c in chunks])
        for name in ("people", "identities", "orders", "items", "events")
    }


def test_same_seed_same_brand_and_another_seed_another() -> None:
    a = _all(SyntheticBrand(seed=7, customers=3000, until=UNTIL))
    b = _all(SyntheticBrand(seed=7, customers=3000, until=UNTIL))
    c = _all(SyntheticBrand(seed=8, customers=3000, until=UNTIL))
    for name in a:
        assert a[name].equals(b[name]), name
    assert not a["people"].equals(c["people"])


def test_chunks_are_independent_of_how_they_are_consumed() -> None:
    brand = SyntheticBrand(seed=3, customers=CHUNK_PEOPLE + 500, until=UNTIL)
    second_first = brand.chunk(1)
    in_order = list(brand.chunks())
    assert second_first.people.equals(in_order[1].people)
    assert second_first.orders.equals(in_order[1].orders)
    person_ids = pa.concat_arrays([c.people.column("person_id").combine_chunks() for c in in_order])
    assert len(person_ids) == CHUNK_PEOPLE + 500 == len(pc.unique(person_ids))


def test_people_look_real() -> None:
    t = _all(SyntheticBrand(seed=1, customers=2000, until=UNTIL))
    people, identities = t["people"].to_pylist(), t["identities"]
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", p["name"]) for p in people)
    assert all(re.fullmatch(r"1[3-9]\d{9}", p["phone"]) for p in people)
    masked = pc.filter(identities, pc.equal(identities.column("kind"), "masked_phone")).column("value")
    assert all(re.fullmatch(r"1\d\d\*{4}\d{4}", v) for v in masked.to_pylist())
    assert pc.all(
        pc.equal(pc.filter(identities, pc.equal(identities.column("kind"), "masked_phone")).column("weak"), True)
    ).as_py()
    channel_counts = [bin(p["channels"]).count("1") for p in people]
    assert min(channel_counts) == 1 and max(channel_counts) == 4
    kinds = set(identities.column("kind").to_pylist())
    assert {
        "phone",
        "email",
        "openid",
        "unionid",
        "wecom_external_userid",
        "taobao_nick",
        "jd_pin",
        "douyin_buyer_id",
        "member_no",
        "masked_phone",
    } <= kinds
    # openids are scoped by app: one person in both mini-program and OA has two different ones
    openids = pc.filter(identities, pc.equal(identities.column("kind"), "openid"))
    assert len(set(openids.column("scope").to_pylist())) == 2
    # Some families share a phone (the identity graph must not merge them blindly).
    phones = [p["phone"] for p in people]
    assert len(set(phones)) < len(phones)


def test_orders_follow_the_ground_truth() -> None:
    t = _all(SyntheticBrand(seed=2, customers=4000, until=UNTIL))
    orders, identities, items = t["orders"], t["identities"], t["items"]
    assert set(orders.column("status").to_pylist()) >= {"completed", "cancelled", "refunded"}
    assert set(orders.column("platform").to_pylist()) == {"tmall", "jd", "douyin", "miniprogram", "offline"}
    assert pc.max(orders.column("ordered_at")).as_py() <= UNTIL
    # Every order's buyer id is an identity of the true buyer, of the platform's kind.
    truth = {(r["kind"], r["value"]): r["person_id"] for r in identities.to_pylist()}
    for o in orders.slice(0, 3000).to_pylist():
        assert truth[(o["buyer_kind"], o["buyer_id"])] == o["person_id"]
        assert o["total_fen"] > 0 and isinstance(o["total_fen"], int)
        assert o["paid_fen"] in (0, o["total_fen"])
        if o["platform"] in ("tmall", "jd", "douyin"):
            assert o["receiver_phone_masked"] and "****" in o["receiver_phone_masked"]
            assert o["receiver_address_masked"].endswith("****")
        if o["status"] == "completed":
            assert o["paid_at"] < o["shipped_at"] < o["completed_at"]
    # Item amounts add up to order totals.
    sums = items.group_by("order_no").aggregate([("amount_fen", "sum")])
    by_no = dict(zip(sums.column("order_no").to_pylist(), sums.column("amount_fen_sum").to_pylist(), strict=True))
    assert all(by_no[o["order_no"]] == o["total_fen"] for o in orders.slice(0, 2000).to_pylist())
    # Repeat buyers exist, with realistic gaps between purchases.
    per_person = orders.group_by("person_id").aggregate([("order_no", "count")])
    assert pc.max(per_person.column("order_no_count")).as_py() >= 5
    assert len(set(orders.column("order_no").to_pylist())) == orders.num_rows


def test_events_cover_the_journeys_we_will_trigger_on() -> None:
    t = _all(SyntheticBrand(seed=4, customers=3000, until=UNTIL))
    names = set(t["events"].column("event").to_pylist())
    assert {
        "OA Followed",
        "OA Unfollowed",
        "Page Viewed",
        "Product Added",
        "Link Clicked",
        "WeCom Contact Added",
    } <= names
    assert len(set(t["events"].column("message_id").to_pylist())) == t["events"].num_rows


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_streams_to_files(tmp_path: Path, fmt: str) -> None:
    brand = SyntheticBrand(seed=5, customers=CHUNK_PEOPLE + 10, until=UNTIL)
    seen: list[int] = []
    counts = write_brand(brand, tmp_path, fmt, seen.append)  # type: ignore[arg-type]
    assert seen == [CHUNK_PEOPLE, 10]
    assert counts["people"] == CHUNK_PEOPLE + 10
    if fmt == "parquet":
        assert pq.read_metadata(tmp_path / "orders.parquet").num_rows == counts["orders"]
        assert pq.read_metadata(tmp_path / "orders.parquet").num_row_groups == 2
    else:
        lines = (tmp_path / "people.csv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == CHUNK_PEOPLE + 10 + 1


def test_seed_loads_a_workspace(db: Database) -> None:
    actor = make_actor(db, "demo")
    brand = SyntheticBrand(seed=6, customers=300, until=UNTIL)
    with db.transaction(Scope.workspace(actor.workspace_id)) as s:
        counts = seed_brand(s, brand)
    truth = _all(brand)
    assert counts["profiles"] == 300
    assert counts["orders"] == truth["orders"].num_rows
    assert counts["events"] == truth["events"].num_rows
    with (
        pytest.raises(ValueError, match="already has orders"),
        db.transaction(Scope.workspace(actor.workspace_id)) as s,
    ):
        seed_brand(s, brand)
