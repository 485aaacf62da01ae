"""Inputs made in arrays (``analytics.lookups``) against their definitions in the engine, on
random data: reachability (identifiers of every kind, of no one, weak or shared; records of
every channel, purpose and status, some of values outside the lists), purchases (orders paid or
not, cancelled, refunded, of buyers of no one or not come yet) and their items (without a SKU,
of SKUs the product list lacks, of orders that are no purchase)."""

from __future__ import annotations

import ibis
import numpy as np
import pyarrow as pa
import pytest

from siyu.analytics.inputs import kept_purchases, kept_reachability, purchased_items
from siyu.analytics.lookups import identifier_people, items_by_lookup, latest_reach, purchases_by_lookup
from siyu.analytics.snapshots import CHANNELS, KINDS, PURPOSES, STATUSES


def ledger(seed: int, identifiers: int, people: int) -> tuple[pa.Table, pa.Table]:
    """Identifiers (with a gap in their codes, as removed ones leave) and each one's latest
    record per channel and purpose, as the snapshot keeps them."""
    rng = np.random.default_rng(seed)
    code = np.sort(rng.choice(identifiers * 2, identifiers, replace=False)).astype(np.int32)
    owner = rng.integers(0, people, identifiers).astype(np.int32)
    kind = rng.integers(0, len(KINDS) + 1, identifiers)  # one past the list: a kind it does not have
    identities = pa.table(
        {
            "code": code,
            "profile_code": pa.array(owner, mask=rng.random(identifiers) < 0.1),
            "kind_code": pa.array(kind.astype(np.int8), mask=kind == len(KINDS)),
            "weak": rng.random(identifiers) < 0.1,
            "shared": rng.random(identifiers) < 0.1,
        }
    )
    keys = {
        (int(i), int(c), int(p))
        for i, c, p in zip(
            rng.choice(code, identifiers * 3),
            rng.integers(0, len(CHANNELS) + 1, identifiers * 3),
            rng.integers(0, len(PURPOSES), identifiers * 3),
            strict=True,
        )
    }
    i, c, p = (np.array(v) for v in zip(*sorted(keys), strict=True))
    status = rng.integers(0, len(STATUSES), i.size)
    latest = pa.table(
        {
            "id": [f"cns_{n:06d}" for n in range(i.size)],
            "at": pa.array(rng.integers(0, 10**12, i.size), pa.timestamp("us")),
            "identity_code": pa.array(i.astype(np.int32), mask=rng.random(i.size) < 0.05),  # not come yet
            "channel_code": pa.array(c.astype(np.int8), mask=c == len(CHANNELS)),
            "purpose_code": p.astype(np.int8),
            "status_code": status.astype(np.int8),
        }
    )
    return identities, latest


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_latest_reach_is_the_engines_reachability(seed: int) -> None:
    identities, latest = ledger(seed, identifiers=3_000, people=1_000)
    con = ibis.duckdb.connect()
    kept = kept_reachability(
        ibis.memtable(identities.rename_columns(["code", "profile_id", "kind_code", "weak", "shared"])),
        ibis.memtable(latest),
    ).to_pyarrow()
    expected = set(zip(*(kept.column(c).to_pylist() for c in kept.column_names), strict=True))
    made = latest_reach(identities, latest, 1_000)
    rows = list(zip(*(made.column(c).to_pylist() for c in ("profile_id", "channel_code", "purpose_code")), strict=True))
    assert len(expected) > 100 and set(rows) == expected and len(rows) == len(expected)  # each once
    assert made.schema.field("profile_id").type == pa.int32()
    con.disconnect()


def test_no_records_reach_no_one() -> None:
    identities, latest = ledger(1, identifiers=10, people=5)
    made = latest_reach(identities, latest.slice(0, 0), 5)
    assert made.num_rows == 0 and made.column_names == ["profile_id", "channel_code", "purpose_code"]


def orders_and_items(seed: int, orders: int) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    """Identifiers (code, profile_code), orders, their items, products."""
    rng = np.random.default_rng(seed)
    identities = pa.table(
        {
            "code": np.arange(0, 400, 2, dtype=np.int32),  # (gaps: identifiers removed)
            "profile_code": pa.array(rng.integers(0, 100, 200).astype(np.int32), mask=rng.random(200) < 0.1),
        }
    )
    ts = pa.timestamp("us")
    when = rng.integers(10**15, 2 * 10**15, orders)

    def sometimes(values: np.ndarray, share: float) -> pa.Array:
        return pa.array(values, ts, mask=rng.random(orders) >= share)

    table = pa.table(
        {
            "code": np.arange(orders, dtype=np.int32),
            "buyer_code": pa.array(rng.integers(0, 402, orders).astype(np.int32), mask=rng.random(orders) < 0.05),
            "paid_at": sometimes(when, 0.8),
            "paid_fen": rng.integers(0, 10**6, orders),
            "cancelled_at": sometimes(when, 0.1),
            "refunded_at": sometimes(when, 0.1),
            "platform_code": rng.integers(0, 3, orders).astype(np.int8),
            "store": rng.choice(["旗舰店", "京东店"], orders),
        }
    )
    lines = orders * 2
    sku = rng.choice([f"SKU{n}" for n in range(30)], lines)
    items = pa.table(
        {
            "order_code": pa.array(rng.integers(0, orders, lines).astype(np.int32)),
            "sku": pa.array(sku, mask=rng.random(lines) < 0.05).dictionary_encode(),
        }
    )
    products = pa.table(
        {
            "sku": [f"SKU{n}" for n in range(25)],  # five SKUs sold are not in the list
            "category": [f"类{n % 4}" for n in range(25)],
            "brand": pa.array([f"牌{n % 3}" for n in range(25)], mask=np.arange(25) == 7),
        }
    )
    return identities, table, items, products


def rows_of(table: pa.Table, columns: list[str]) -> list[tuple[object, ...]]:
    return sorted(zip(*(table.column(c).to_pylist() for c in columns), strict=True), key=repr)


@pytest.mark.parametrize("seed", [1, 2])
def test_purchases_and_items_by_lookup_are_the_engines(seed: int) -> None:
    identities, orders, items, products = orders_and_items(seed, 2_000)
    con = ibis.duckdb.connect()
    numbered = ibis.memtable(identities.rename_columns(["code", "profile_id"]))
    engine = kept_purchases(ibis.memtable(orders), numbered).to_pyarrow()
    made = purchases_by_lookup(orders, identifier_people(identities))
    columns = ["profile_id", "order_code", "at", "amount_fen", "platform_code", "store"]
    assert 500 < made.num_rows < 2_000 and rows_of(made, columns) == rows_of(engine, columns)
    assert made.schema.field("profile_id").type == pa.int32()
    plain = purchases_by_lookup(orders.drop_columns(["store"]), identifier_people(identities))
    assert "store" not in plain.column_names and plain.num_rows == made.num_rows

    lines = items.set_column(1, "sku", items.column("sku").cast(pa.string()))
    bought = purchased_items(ibis.memtable(engine), ibis.memtable(lines), ibis.memtable(products)).to_pyarrow()
    columns = ["profile_id", "at", "sku", "category", "brand"]
    looked_up = items_by_lookup(made, items, products)
    assert rows_of(looked_up, columns) == rows_of(bought, columns)
    assert None in looked_up.column("sku").to_pylist() and None in looked_up.column("category").to_pylist()

    def wanted(each: pa.Table) -> np.ndarray:  # category 类1, or SKU28 (not in the list)
        return np.array(
            [
                c == "类1" or s == "SKU28"
                for s, c in zip(each["sku"].to_pylist(), each["category"].to_pylist(), strict=True)
            ]
        )

    chosen = items_by_lookup(made, items, products, wanted)
    expected = [r for r in rows_of(bought, columns) if r[3] == "类1" or r[2] == "SKU28"]
    assert rows_of(chosen, columns) == expected and any(r[2] == "SKU28" for r in expected)
    con.disconnect()
