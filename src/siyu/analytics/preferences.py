"""Preferences and purchase cycles: what each buyer tends to buy, where, for how much and when,
and when they are likely to buy next.

Per person with a purchase: the category and the brand they spent most on (items of their paid
orders, priced by the order lines; products name the category and brand of each SKU), their price
band (the median unit price of what they bought, in the workspace's bands), the platform and the
local hour of day they order most, the median interval between their purchase days, and — with
two purchase days or more — the day their next purchase is expected (the last plus that median).
Ties go to the alphabetically first name (or the earlier hour), so every engine agrees.

Written once as Ibis expressions: the same code runs on DuckDB, PostgreSQL and Spark.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir

from siyu.core.clock import ensure_utc

DAY_SECONDS = 86_400
COLUMNS = (
    "profile_id",
    "top_category",
    "top_brand",
    "price_band",
    "top_platform",
    "top_hour",
    "median_interval_days",
    "next_purchase_day",
)
# Upper bounds of the default price bands, in fen: below 50 yuan, 50–150, 150–300, 300–600, 600 and up.
PRICE_BANDS = (5_000, 15_000, 30_000, 60_000)


def band_label(upper_bounds: Sequence[int], index: int) -> str:
    """ "<50", "50-150", … "600+" (yuan) for the band at ``index``."""
    yuan = [b // 100 for b in upper_bounds]
    if index == 0:
        return f"<{yuan[0]}"
    if index >= len(yuan):
        return f"{yuan[-1]}+"
    return f"{yuan[index - 1]}-{yuan[index]}"


def _top(table: ir.Table, key: str, weight: str, name: str) -> ir.Table:
    """profile_id and the ``key`` with the largest total ``weight`` per person, as ``name``."""
    totals = table.group_by(["profile_id", key]).aggregate(total=table[weight].sum())
    ranked = totals.mutate(
        rank=ibis.row_number().over(group_by="profile_id", order_by=[ibis.desc("total"), ibis.asc(key)])
    )
    return ranked.filter(ranked["rank"] == 0).select("profile_id", **{name: ranked[key]})


def preferences(
    purchases: ir.Table,
    items: ir.Table,
    products: ir.Table,
    as_of: datetime,
    timezone: str = "Asia/Shanghai",
    bands: Sequence[int] = PRICE_BANDS,
) -> ir.Table:
    """profile_id, top_category, top_brand, price_band, top_platform, top_hour,
    median_interval_days, next_purchase_day (a date, or null with a single purchase day)."""
    now = ensure_utc(as_of)
    now_s = int(now.timestamp())
    offset = ZoneInfo(timezone).utcoffset(now.replace(tzinfo=None)) or timedelta(0)
    shift = int(offset.total_seconds())
    seen = purchases.filter(purchases.at.epoch_seconds() <= now_s)

    bought = seen.select("profile_id", "order_code")
    order_lines = items.select("order_code", "sku", amount=items.amount_fen, unit=items.unit_price_fen)
    kinds = products.select("sku", "category", "brand")
    lines = bought.join(order_lines, "order_code").left_join(kinds, "sku")
    lines = lines.select(
        "profile_id",
        "amount",
        "unit",
        category=lines.category.fill_null("(uncategorised)"),
        brand=lines.brand.fill_null("(no brand)"),
    )
    category = _top(lines, "category", "amount", "top_category")
    brand = _top(lines, "brand", "amount", "top_brand")
    unit = lines.group_by("profile_id").aggregate(median_unit=lines.unit.median())
    band_index = ibis.literal(0)
    for bound in bands:
        band_index = band_index + (unit.median_unit >= bound).ifelse(1, 0)
    labels = ibis.cases(*[(band_index == i, band_label(bands, i)) for i in range(len(bands) + 1)])
    band = unit.select("profile_id", price_band=labels)

    counted = seen.mutate(one=ibis.literal(1))
    platform = _top(counted, "platform", "one", "top_platform")
    local_hour = (((seen.at.epoch_seconds() + shift) % DAY_SECONDS) // 3600).cast("int64")
    hour = _top(seen.mutate(hour=local_hour, one=ibis.literal(1)), "hour", "one", "top_hour")

    days = seen.select("profile_id", day=(seen.at.epoch_seconds() // DAY_SECONDS).cast("int64")).distinct()
    gaps = days.mutate(gap=days.day - days.day.lag().over(group_by="profile_id", order_by="day"))
    cycles = gaps.group_by("profile_id").aggregate(
        median_interval_days=gaps.gap.median(), last_day=gaps.day.max(), purchase_days=gaps.count()
    )
    epoch = ibis.date(1970, 1, 1)
    next_day = (cycles.purchase_days >= 2).ifelse(
        # Half a day rounds up, on every engine alike.
        epoch + (cycles.last_day + (cycles.median_interval_days + 0.5).floor().cast("int64")).as_interval("D"),
        ibis.null("date"),
    )
    cycle = cycles.select("profile_id", median_interval_days=cycles.median_interval_days, next_purchase_day=next_day)

    people = seen.select("profile_id").distinct()
    out = people
    for part in (category, brand, band, platform, hour, cycle):
        out = out.left_join(part, "profile_id").drop("profile_id_right")
    return out.select(*COLUMNS)
