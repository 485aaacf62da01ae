"""Preferences and purchase cycles as Ibis expressions: worked out by hand (spend by category and
brand from the order lines, the median unit price's band, platform and local hour, the median
interval and the next purchase day), and the same on PostgreSQL and Spark."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import ibis
import pyarrow as pa

from siyu.analytics.preferences import band_label, preferences
from tests.test_analytics_rfm import AS_OF

TS = pa.timestamp("us", tz="UTC")


def tables() -> tuple[pa.Table, pa.Table, pa.Table]:
    when = [(30, 2), (20, 2), (5, 14), (3, 1)]
    bought = pa.table(
        {
            "profile_id": ["a", "a", "a", "b"],
            "order_code": pa.array([1, 2, 3, 4], pa.int32()),
            "at": pa.array([AS_OF - timedelta(days=d, hours=h) for d, h in when], TS),
            "amount_fen": [100, 200, 300, 400],  # order totals: never the line amounts
            "platform": ["tmall", "tmall", "jd", "jd"],
            "store": ["s"] * 4,
        }
    )
    items = pa.table(
        {
            "order_code": pa.array([1, 1, 2, 3, 4], pa.int32()),
            "sku": ["A", "B", "A", "C", "Z"],
            "quantity": [1] * 5,
            "unit_price_fen": [4000, 20000, 4000, 70000, 100],
            "amount_fen": [4000, 20000, 4000, 70000, 100],
        }
    )
    products = pa.table(
        {"sku": ["A", "B", "C"], "category": ["面霜", "精华", "面霜"], "brand": ["溪谷", "溪谷", "森屿"]}
    )
    return bought, items, products


def run_on(con: Any, put: Any) -> dict[str, dict[str, Any]]:
    bought, items, products = (put(con, t) for t in tables())
    got = preferences(bought, items, products, AS_OF, "Asia/Shanghai").to_pyarrow()
    return {r["profile_id"]: r for r in got.to_pylist()}


def _duckdb_put(con: Any, table: pa.Table) -> Any:
    return con.create_table(f"t_{uuid.uuid4().hex}", table)


def test_preferences_by_hand() -> None:
    got = run_on(ibis.duckdb.connect(), _duckdb_put)
    a, b = got["a"], got["b"]
    assert a["top_category"] == "面霜"  # 78,000 fen of face cream against 20,000 of serum
    assert a["top_brand"] == "森屿"  # one 70,000 line outweighs three smaller ones
    assert a["price_band"] == "50-150"  # median unit price 120 yuan
    assert a["top_platform"] == "tmall" and a["top_hour"] == 6  # two orders at 22:00 UTC, 06:00 in Shanghai
    assert a["median_interval_days"] == 12.5  # purchase days 10 and 15 apart
    assert a["next_purchase_day"] == date(2026, 10, 26) + timedelta(days=13)  # last day + 12.5, half rounded up
    assert (b["top_category"], b["top_brand"], b["price_band"]) == ("(uncategorised)", "(no brand)", "<50")
    assert b["median_interval_days"] is None and b["next_purchase_day"] is None


def test_band_labels() -> None:
    bands = (5_000, 15_000)
    assert [band_label(bands, i) for i in range(3)] == ["<50", "50-150", "150+"]


def test_postgres_gives_duckdbs_preferences(postgres: Any) -> None:
    def put(con: Any, table: pa.Table) -> Any:
        return con.create_table(f"t_{uuid.uuid4().hex}", table, temp=True)

    assert run_on(postgres, put) == run_on(ibis.duckdb.connect(), _duckdb_put)


def test_spark_gives_duckdbs_preferences(spark: Any) -> None:
    def put(con: Any, table: pa.Table) -> Any:
        name = f"t_{uuid.uuid4().hex}"
        con._session.createDataFrame(table).createOrReplaceTempView(name)
        return con.table(name)

    assert run_on(spark, put) == run_on(ibis.duckdb.connect(), _duckdb_put)
