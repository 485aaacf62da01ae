"""The batch engine's computations on generated orders, against the same computation written by
hand as DuckDB SQL and as pandas, on the same Parquet snapshots, with checksums that must agree.

    python bench/analytics_batch.py [--orders 10000000] [--customers 1000000] [--repeat 3] [--no-pandas]

The snapshots have the shape the batch engine keeps (``orders.parquet``, ``identities.parquet``:
string ids, nullable timestamps, a tenth of customers with a second buyer identity). What runs:
RFM over purchases (paid, neither cancelled nor refunded, attributed to the buyer's person):
siyu's Ibis expressions on in-memory DuckDB; one hand-written DuckDB SQL statement; pandas.
Each prints the median of ``--repeat`` runs (the data is generated once) and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siyu.analytics.inputs import purchases
from siyu.analytics.rfm import DAY_SECONDS, GROUPS, RfmConfig, rfm

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
SPAN_DAYS = 3 * 365
CONFIG = RfmConfig()
CHUNK = 5_000_000
SCORES = ("r_score", "f_score", "m_score")


def generate(folder: Path, orders: int, customers: int, seed: int) -> None:
    """Write orders.parquet and identities.parquet in the batch engine's snapshot shape."""
    rng = np.random.default_rng(seed)
    second = rng.random(customers) < 0.1  # a tenth buy under a second identity too
    owner = np.concatenate([np.arange(customers), np.flatnonzero(second)])
    identities = pa.table(
        {
            "id": _ids("idn_", np.arange(len(owner))),
            "profile_id": _ids("pf_", owner),
            "kind": pa.array(np.where(np.arange(len(owner)) < customers, "taobao_nick", "jd_pin")),
            "weak": pa.array(np.zeros(len(owner), dtype=bool)),
            "shared": pa.array(np.zeros(len(owner), dtype=bool)),
        }
    )
    pq.write_table(identities, folder / "identities.parquet")
    end_us = int(AS_OF.timestamp() * 1_000_000)
    with pq.ParquetWriter(folder / "orders.parquet", _orders_schema()) as writer:
        for start in range(0, orders, CHUNK):
            n = min(CHUNK, orders - start)
            # Buyers: a long tail (a few buy often, most once or twice).
            buyer = np.minimum((rng.pareto(1.2, n) * customers / 8).astype(np.int64), len(owner) - 1)
            ordered = end_us - rng.integers(0, SPAN_DAYS * DAY_SECONDS * 1_000_000, n)
            amount = np.maximum(rng.lognormal(9.5, 1.0, n).astype(np.int64), 100)
            fate = rng.random(n)
            paid = fate >= 0.04  # 4% never paid
            cancelled = fate < 0.04
            refunded = (fate >= 0.04) & (fate < 0.06)
            ts = pa.timestamp("us")  # UTC, as the snapshots keep it
            at = pa.array(ordered + 600_000_000, ts)
            nulls = pa.nulls(n, ts)
            writer.write_table(
                pa.table(
                    {
                        "id": pc.binary_join_element_wise(
                            "ord_", pc.cast(pa.array(np.arange(start, start + n)), pa.string()), ""
                        ),
                        "platform": pa.array(np.where(buyer < customers, "tmall", "jd")),
                        "store": pa.array(np.full(n, "旗舰店")),
                        "buyer_identity_id": pc.binary_join_element_wise(
                            "idn_", pc.cast(pa.array(buyer), pa.string()), ""
                        ),
                        "status": pa.array(
                            np.where(cancelled, "cancelled", np.where(refunded, "refunded", "completed"))
                        ),
                        "total_fen": pa.array(amount),
                        "paid_fen": pa.array(np.where(paid, amount, 0)),
                        "ordered_at": pa.array(ordered, ts),
                        "paid_at": pc.if_else(pa.array(paid), at, nulls),
                        "completed_at": pc.if_else(pa.array(paid & ~refunded), at, nulls),
                        "refunded_at": pc.if_else(pa.array(refunded), at, nulls),
                        "cancelled_at": pc.if_else(pa.array(cancelled), at, nulls),
                    },
                    schema=_orders_schema(),
                )
            )


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def _orders_schema() -> pa.Schema:
    ts = pa.timestamp("us")
    return pa.schema(
        [
            ("id", pa.string()),
            ("platform", pa.string()),
            ("store", pa.string()),
            ("buyer_identity_id", pa.string()),
            ("status", pa.string()),
            ("total_fen", pa.int64()),
            ("paid_fen", pa.int64()),
            ("ordered_at", ts),
            ("paid_at", ts),
            ("completed_at", ts),
            ("refunded_at", ts),
            ("cancelled_at", ts),
        ]
    )


CHECKSUM = """
SELECT count(*) AS people, sum(r_score * 100 + f_score * 10 + m_score) AS scores,
       sum(frequency) AS orders, sum(monetary_fen) AS spend,
       sum(hash(profile_id || ':' || rfm_group) % 1000003) AS placed
FROM result
"""


def checksum(result: pa.Table) -> tuple[int, ...]:
    con = duckdb.connect()
    con.register("result", result)
    [row] = con.sql(CHECKSUM).fetchall()
    con.close()
    assert row is not None
    return tuple(int(v) for v in row)


def run_siyu(folder: Path) -> pa.Table:
    con = ibis.duckdb.connect()
    orders = con.read_parquet(folder / "orders.parquet")
    identities = con.read_parquet(folder / "identities.parquet")
    out = rfm(purchases(orders, identities), AS_OF, CONFIG).to_pyarrow()
    con.disconnect()
    return out


def hand_sql(folder: Path) -> str:
    now_s = int(AS_OF.timestamp())
    start_s = now_s - CONFIG.window_days * DAY_SECONDS
    groups = " ".join(
        "WHEN "
        + " AND ".join(f"({score} >= 3) = {str(high).lower()}" for score, high in zip(SCORES, key, strict=True))
        + f" THEN '{code}'"
        for key, code in GROUPS.items()
    )
    return f"""
WITH seen AS (
    SELECT i.profile_id, epoch(o.paid_at)::BIGINT AS at_s, o.paid_at, o.paid_fen
    FROM read_parquet('{folder / "orders.parquet"}') o
    JOIN read_parquet('{folder / "identities.parquet"}') i ON o.buyer_identity_id = i.id
    WHERE o.paid_at IS NOT NULL AND o.cancelled_at IS NULL AND o.refunded_at IS NULL
      AND i.profile_id IS NOT NULL AND epoch(o.paid_at)::BIGINT <= {now_s}
), people AS (
    SELECT profile_id, max(paid_at) AS last_purchase_at,
           count(*) FILTER (WHERE at_s > {start_s}) AS frequency,
           coalesce(sum(paid_fen) FILTER (WHERE at_s > {start_s}), 0)::BIGINT AS monetary_fen,
           ({now_s} - max(at_s)) // {DAY_SECONDS} AS recency_days
    FROM seen GROUP BY profile_id
), scored AS (
    SELECT *,
        1 + (rank() OVER (ORDER BY recency_days DESC) - 1) * 5 // count(*) OVER () AS r_score,
        1 + (rank() OVER (ORDER BY frequency) - 1) * 5 // count(*) OVER () AS f_score,
        1 + (rank() OVER (ORDER BY monetary_fen) - 1) * 5 // count(*) OVER () AS m_score
    FROM people
)
SELECT profile_id, last_purchase_at, recency_days, frequency, monetary_fen, r_score, f_score, m_score,
       CASE {groups} END AS rfm_group
FROM scored
"""


def run_sql(folder: Path) -> pa.Table:
    con = duckdb.connect()
    out = con.sql(hand_sql(folder)).to_arrow_table()
    con.close()
    return out


def run_pandas(folder: Path) -> pa.Table:
    import pandas as pd

    orders = pd.read_parquet(
        folder / "orders.parquet", columns=["buyer_identity_id", "paid_fen", "paid_at", "refunded_at", "cancelled_at"]
    )
    identities = pd.read_parquet(folder / "identities.parquet", columns=["id", "profile_id"])
    now_s = int(AS_OF.timestamp())
    start_s = now_s - CONFIG.window_days * DAY_SECONDS
    paid = orders[orders.paid_at.notna() & orders.cancelled_at.isna() & orders.refunded_at.isna()]
    seen = paid.merge(identities, left_on="buyer_identity_id", right_on="id")
    seen = seen[seen.profile_id.notna()]
    at_s = seen.paid_at.to_numpy().astype("datetime64[s]").astype("int64")
    seen = seen.assign(at_s=at_s)
    seen = seen[seen.at_s <= now_s]
    in_window = seen.at_s > start_s
    seen = seen.assign(f=in_window.astype("int64"), m=seen.paid_fen.where(in_window, 0))
    people = seen.groupby("profile_id", sort=False).agg(
        last_purchase_at=("paid_at", "max"), last_s=("at_s", "max"), frequency=("f", "sum"), monetary_fen=("m", "sum")
    )
    people["recency_days"] = (now_s - people.last_s) // DAY_SECONDS
    n = len(people)
    people["r_score"] = 1 + (people.recency_days.rank(method="min", ascending=False).astype("int64") - 1) * 5 // n
    people["f_score"] = 1 + (people.frequency.rank(method="min").astype("int64") - 1) * 5 // n
    people["m_score"] = 1 + (people.monetary_fen.rank(method="min").astype("int64") - 1) * 5 // n
    high = [people[c] >= 3 for c in ("r_score", "f_score", "m_score")]
    people["rfm_group"] = "general_retain"
    for (r, f, m), code in GROUPS.items():
        people.loc[(high[0] == r) & (high[1] == f) & (high[2] == m), "rfm_group"] = code
    people = people.drop(columns="last_s").reset_index()
    return pa.Table.from_pandas(people, preserve_index=False)


def timed(fn: Callable[[Path], pa.Table], folder: Path, repeat: int) -> tuple[float, tuple[int, ...]]:
    times, sums = [], set()
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(folder)
        times.append(time.perf_counter() - started)
        sums.add(checksum(result))
    assert len(sums) == 1, f"{fn.__name__} gave different results on different runs"
    return statistics.median(times), sums.pop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-pandas", dest="pandas", action="store_false")
    parser.add_argument("--dir", type=Path, help="keep the generated snapshots here (reused if present)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "orders.parquet").exists():
            started = time.perf_counter()
            generate(folder, args.orders, args.customers, args.seed)
            took = time.perf_counter() - started
            print(f"generated {args.orders:,} orders for {args.customers:,} customers in {took:.1f} s")
        print(f"RFM on {args.orders:,} orders, median of {args.repeat} runs")
        siyu_s, siyu_sum = timed(run_siyu, folder, args.repeat)
        sql_s, sql_sum = timed(run_sql, folder, args.repeat)
        print(f"siyu (Ibis on DuckDB): {siyu_s:.2f} s; checksum {siyu_sum}")
        print(f"hand-written DuckDB SQL: {sql_s:.2f} s; siyu/SQL = {siyu_s / sql_s:.2f}x; checksum {sql_sum}")
        assert siyu_sum == sql_sum, "siyu and the hand-written SQL disagree"
        if args.pandas:
            pandas_s, pandas_sum = timed(run_pandas, folder, args.repeat)
            print(f"pandas: {pandas_s:.2f} s; pandas/siyu = {pandas_s / siyu_s:.1f}x; checksum {pandas_sum}")
            assert pandas_sum == siyu_sum, "siyu and pandas disagree"
        print("checksums agree")


if __name__ == "__main__":
    main()
