"""Synthetic orders with items and a status timeline, following each person's purchase cycle.

A buyer's first order falls some time after they joined; later ones follow gamma-distributed
gaps around a personal mean (so some buy monthly, others twice a year). Each order goes through
the channel the person buys on and carries that channel's buyer id and a masked receiver.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.demo import arrays as arr
from siyu.demo.people import CHANNELS, MP_APPID, PeopleChunk, seconds_before
from siyu.demo.vocab import BRANDS, CATALOGUE, STORES

MAX_ORDERS_PER_PERSON = 999
DAY = 86400.0
# platform per purchase channel and the identity kind its orders carry
_PLATFORM_OF = {"tmall": "tmall", "jd": "jd", "douyin": "douyin", "miniprogram": "miniprogram", "member": "offline"}
_ORDER_NO_PREFIX = {"tmall": "3", "jd": "2", "douyin": "69", "miniprogram": "MP", "offline": "POS"}


_TS = pa.timestamp("us", tz="UTC")
ORDER_SCHEMA = pa.schema(
    [
        ("order_no", pa.string()),
        ("platform", pa.string()),
        ("store", pa.string()),
        ("person_id", pa.int64()),
        ("buyer_kind", pa.string()),
        ("buyer_scope", pa.string()),
        ("buyer_id", pa.string()),
        ("status", pa.string()),
        ("total_fen", pa.int64()),
        ("paid_fen", pa.int64()),
        ("receiver_name_masked", pa.string()),
        ("receiver_phone_masked", pa.string()),
        ("receiver_address_masked", pa.string()),
        ("ordered_at", _TS),
        ("paid_at", _TS),
        ("shipped_at", _TS),
        ("completed_at", _TS),
        ("refunded_at", _TS),
        ("cancelled_at", _TS),
    ]
)
ITEM_SCHEMA = pa.schema(
    [
        ("order_no", pa.string()),
        ("platform", pa.string()),
        ("line", pa.int32()),
        ("sku", pa.string()),
        ("quantity", pa.int32()),
        ("unit_price_fen", pa.int64()),
        ("amount_fen", pa.int64()),
    ]
)


@dataclass(frozen=True)
class Catalogue:
    products: pa.Table
    category_of: np.ndarray  # product index -> category index
    price_fen: np.ndarray
    by_category: list[np.ndarray]


def build_catalogue() -> Catalogue:
    skus, names, cats, brands, prices, cat_idx = [], [], [], [], [], []
    rng = np.random.default_rng(20240101)  # the catalogue is the same for every seed
    for c, (category, (items, (low, high))) in enumerate(CATALOGUE.items()):
        for i, item in enumerate(items):
            for b, brand in enumerate(BRANDS):
                skus.append(f"SKU{c:02d}{i:02d}{b:02d}")
                names.append(f"{brand}{item}")
                cats.append(category)
                brands.append(brand)
                prices.append(int(rng.integers(low, high + 1)) * 100 - 1)  # ¥x99.00 style
                cat_idx.append(c)
    products = pa.table(
        {
            "sku": skus,
            "name": names,
            "category": cats,
            "brand": brands,
            "price_fen": pa.array(prices, type=pa.int64()),
        }
    )
    cat_arr = np.array(cat_idx)
    return Catalogue(
        products,
        cat_arr,
        np.array(prices, dtype=np.int64),
        [np.flatnonzero(cat_arr == c) for c in range(len(CATALOGUE))],
    )


def generate_orders(
    rng: np.random.Generator,
    chunk: PeopleChunk,
    catalogue: Catalogue,
    until: datetime,
    mean_orders: float,
) -> tuple[pa.Table, pa.Table]:
    ids = chunk.people.column("person_id").to_numpy()
    buy_cols = [CHANNELS.index(c) for c in _PLATFORM_OF]
    buys = chunk.channels[:, buy_cols]
    buyer = buys.any(axis=1)
    # Order counts: many one-time buyers, a loyal tail (geometric with mean `mean_orders`).
    counts = np.where(buyer, rng.geometric(1.0 / max(mean_orders, 1.0), len(ids)), 0)
    counts = np.minimum(counts, MAX_ORDERS_PER_PERSON)
    person_idx = np.repeat(np.arange(len(ids)), counts)
    n = person_idx.size
    if n == 0:
        return ORDER_SCHEMA.empty_table(), ITEM_SCHEMA.empty_table()
    nz = counts > 0
    starts = (np.cumsum(counts) - counts)[nz]
    seq = np.arange(n) - np.repeat(starts, counts[nz])
    gap = rng.gamma(2.0, chunk.gap_days[person_idx] / 2.0) * DAY
    first_delay = rng.exponential(20 * DAY, n)
    step = np.where(seq == 0, first_delay, gap)
    offset = np.cumsum(step)
    offset -= np.repeat(offset[starts] - step[starts], counts[nz])
    age = chunk.joined_at[person_idx] - offset  # seconds before `until`
    keep = age > 0
    person_idx, seq, age = person_idx[keep], seq[keep], age[keep]
    n = person_idx.size
    if n == 0:
        return ORDER_SCHEMA.empty_table(), ITEM_SCHEMA.empty_table()
    # The channel of each order: one of the person's purchase channels, favouring the first.
    weights = buys[person_idx] * rng.random((n, len(buy_cols)))
    channel = np.argmax(weights, axis=1)
    platforms = np.array(list(_PLATFORM_OF.values()))[channel]
    global_no = ids[person_idx] * 1000 + seq
    order_no = arr.concat(
        pa.array(np.array([_ORDER_NO_PREFIX[p] for p in _PLATFORM_OF.values()])[channel]),
        arr.digits(global_no, 16),
    )
    ordered_at = seconds_before(until, age)
    status, paid, shipped, completed, refunded, cancelled = _timeline(rng, age)

    # Items: 1-3 lines, mostly from the person's favourite category.
    lines = rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1])
    order_of_line = np.repeat(np.arange(n), lines)
    fav = chunk.favourite_category[person_idx][order_of_line]
    any_cat = rng.integers(0, len(catalogue.by_category), order_of_line.size)
    cat = np.where(rng.random(order_of_line.size) < 0.7, fav, any_cat)
    sizes = np.array([len(x) for x in catalogue.by_category])
    pick = (rng.random(order_of_line.size) * sizes[cat]).astype(int)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate(catalogue.by_category)
    product = flat[offsets[cat] + pick]
    qty = rng.choice([1, 2, 3], size=order_of_line.size, p=[0.8, 0.15, 0.05])
    amount = catalogue.price_fen[product] * qty
    total = np.bincount(order_of_line, weights=amount, minlength=n).astype(np.int64)
    paid_fen = np.where(np.isin(status, ["unpaid", "cancelled"]), 0, total)

    buyer_kind = np.array(["taobao_nick", "jd_pin", "douyin_buyer_id", "openid", "member_no"])[channel]
    identities = chunk.identities
    buyer_ids = _buyer_ids(identities, ids[person_idx], buyer_kind)
    masked_name = arr.concat(
        pc.utf8_slice_codeunits(pc.take(chunk.people.column("name"), pa.array(person_idx)), 0, 1),
        "**",
    )
    is_marketplace = np.isin(platforms, ["tmall", "jd", "douyin"])
    addr = arr.concat(
        pc.take(chunk.people.column("province"), pa.array(person_idx)),
        pc.take(chunk.people.column("city"), pa.array(person_idx)),
        pc.take(chunk.people.column("district"), pa.array(person_idx)),
        "****",
    )
    orders = pa.table(
        {
            "order_no": order_no,
            "platform": pa.array(platforms),
            "store": pa.array(np.array([STORES[p] for p in _PLATFORM_OF.values()])[channel]),
            "person_id": pa.array(ids[person_idx]),
            "buyer_kind": pa.array(buyer_kind),
            "buyer_scope": pa.array(
                np.where(buyer_kind == "openid", MP_APPID, np.where(is_marketplace, platforms, ""))
            ),
            "buyer_id": buyer_ids,
            "status": pa.array(status),
            "total_fen": pa.array(total),
            "paid_fen": pa.array(paid_fen),
            "receiver_name_masked": arr.mask(masked_name, is_marketplace),
            "receiver_phone_masked": arr.mask(pc.take(chunk.masked_phone, pa.array(person_idx)), is_marketplace),
            "receiver_address_masked": arr.mask(addr, is_marketplace),
            "ordered_at": ordered_at,
            "paid_at": _at(until, age, paid),
            "shipped_at": _at(until, age, shipped),
            "completed_at": _at(until, age, completed),
            "refunded_at": _at(until, age, refunded),
            "cancelled_at": _at(until, age, cancelled),
        }
    ).cast(ORDER_SCHEMA)
    items = pa.table(
        {
            "order_no": pc.take(order_no, pa.array(order_of_line)),
            "platform": pa.array(platforms[order_of_line]),
            "line": pa.array(
                (np.arange(order_of_line.size) - np.repeat(np.concatenate([[0], np.cumsum(lines)[:-1]]), lines)).astype(
                    np.int32
                )
            ),
            "sku": pc.take(catalogue.products.column("sku"), pa.array(product)),
            "quantity": pa.array(qty.astype(np.int32)),
            "unit_price_fen": pa.array(catalogue.price_fen[product]),
            "amount_fen": pa.array(amount.astype(np.int64)),
        }
    ).cast(ITEM_SCHEMA)
    return orders, items


def _timeline(rng: np.random.Generator, age: np.ndarray) -> tuple[np.ndarray, ...]:
    """Status and the delay (seconds after ordering) of each later step; NaN when not reached."""
    n = age.size
    pay_delay = rng.exponential(300, n)
    ship_delay = pay_delay + rng.uniform(0.3, 2.0, n) * DAY
    done_delay = ship_delay + rng.uniform(3, 10, n) * DAY
    never_paid = rng.random(n) < 0.06
    refunded = (~never_paid) & (rng.random(n) < 0.05)
    nan = np.full(n, np.nan)
    paid = np.where(never_paid | (age < pay_delay), nan, pay_delay)
    shipped = np.where(np.isnan(paid) | (age < ship_delay), nan, ship_delay)
    completed = np.where(np.isnan(shipped) | (age < done_delay) | refunded, nan, done_delay)
    refund_at = np.where(refunded & ~np.isnan(shipped) & (age > ship_delay + 2 * DAY), ship_delay + 2 * DAY, nan)
    # Unpaid orders close after 30 minutes (marketplaces' default); recent ones are still open.
    cancelled = np.where(np.isnan(paid) & (age > 1800), 1800.0, nan)
    status = np.full(n, "unpaid", dtype=object)
    status[~np.isnan(paid)] = "paid"
    status[~np.isnan(shipped)] = "shipped"
    status[~np.isnan(completed)] = "completed"
    status[~np.isnan(refund_at)] = "refunded"
    status[~np.isnan(cancelled)] = "cancelled"
    return status.astype(str), paid, shipped, completed, refund_at, cancelled


def _at(until: datetime, age: np.ndarray, delay: np.ndarray) -> pa.Array:
    reached = ~np.isnan(delay)
    values = seconds_before(until, np.where(reached, age - np.nan_to_num(delay), 0.0))
    return pc.if_else(pa.array(reached), values, pa.nulls(age.size, values.type))


def _buyer_ids(identities: pa.Table, person_ids: np.ndarray, kinds: np.ndarray) -> pa.Array:
    """Look up each order's buyer identifier (the person's id of that kind) with a hash join."""
    wanted = pa.table(
        {"person_id": pa.array(person_ids), "kind": pa.array(kinds), "row": pa.array(np.arange(person_ids.size))}
    )
    mp_or_other = pc.or_(
        pc.not_equal(identities.column("kind"), "openid"), pc.equal(identities.column("scope"), MP_APPID)
    )
    ids = identities.filter(mp_or_other).select(["person_id", "kind", "value"])
    joined = wanted.join(ids, ["person_id", "kind"], join_type="left outer").sort_by("row")
    return joined.column("value").combine_chunks()
