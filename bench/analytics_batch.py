"""The batch engine's computations on generated orders, against the same computation written by
hand as DuckDB SQL and as pandas, on the same Parquet snapshots, with checksums that must agree.

    python bench/analytics_batch.py [--orders 10000000] [--customers 1000000] [--repeat 3] [--no-pandas]

The snapshots have the shape the batch engine keeps (``orders.parquet``, ``identities.parquet``:
string ids, nullable timestamps, a tenth of customers with a second buyer identity, each buyer's
orders together). What runs:
RFM over purchases (paid, neither cancelled nor refunded, attributed to the buyer's person),
every person's lifecycle stage by the default stage model, and five rule tags over those results
and the purchases (``RULE_TAGS``): siyu's Ibis expressions and rule compiler on in-memory DuckDB,
as a batch run computes them (the tags as bitmaps over the people's codes); hand-written DuckDB
SQL (one statement each); pandas.
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
from typing import Any

import duckdb
import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siyu.analytics.inputs import kept_purchases, named_platforms, purchase_totals
from siyu.analytics.lifecycle import DEFAULT_MODEL, staged
from siyu.analytics.rfm import DAY_SECONDS, GROUPS, RfmConfig, scored_rfm
from siyu.analytics.rule_inputs import names_a_store, numbered_identities
from siyu.analytics.snapshots import KINDS, PLATFORMS, places_in
from siyu.rules.compiler import Moment, RuleInputs, recent_purchase_tallies
from siyu.rules.nodes import parse_rule
from siyu.tags.evaluate import TagSpec, evaluate_tags

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
SPAN_DAYS = 3 * 365
CONFIG = RfmConfig()
CHUNK = 5_000_000
SCORES = ("r_score", "f_score", "m_score")
RULE_TAGS: dict[str, dict[str, object]] = {
    "valuable_and_active": {
        "type": "and",
        "conditions": [
            {"type": "rfm_group", "groups": ["important_value", "important_develop"]},
            {"type": "lifecycle", "stages": ["loyal", "active"]},
        ],
    },
    "bought_twice_in_30_days": {"type": "orders", "measure": "count", "value": 2, "window": {"days": 30}},
    "spent_1000_yuan_in_a_year": {"type": "orders", "measure": "total_fen", "value": 100_000, "window": {"days": 365}},
    "sleeping_big_spenders": {
        "type": "and",
        "conditions": [
            {"type": "lifecycle", "stages": ["dormant"]},
            {"type": "rfm_score", "score": "m", "op": "gte", "value": 4},
        ],
    },
    "not_lost": {"type": "not", "condition": {"type": "lifecycle", "stages": ["lost"]}},
}


def generate(folder: Path, orders: int, customers: int, seed: int) -> None:
    """Write orders.parquet and identities.parquet in the batch engine's snapshot shape."""
    rng = np.random.default_rng(seed)
    second = rng.random(customers) < 0.1  # a tenth buy under a second identity too
    owner = np.concatenate([np.arange(customers), np.flatnonzero(second)])
    kind = pa.array(np.where(np.arange(len(owner)) < customers, "taobao_nick", "jd_pin"))
    identities = pa.table(
        {
            "id": _ids("idn_", np.arange(len(owner))),
            "profile_id": _ids("pf_", owner),
            "kind": kind,
            "weak": pa.array(np.zeros(len(owner), dtype=bool)),
            "shared": pa.array(np.zeros(len(owner), dtype=bool)),
            "code": pa.array(np.arange(len(owner), dtype=np.int32)),
            "profile_code": pa.array(owner.astype(np.int32)),
            "kind_code": places_in(kind, KINDS),
        }
    )
    pq.write_table(identities, folder / "identities.parquet")
    end_us = int(AS_OF.timestamp() * 1_000_000)
    # Buyers: a long tail (a few buy often, most once or twice); each buyer's orders together, as
    # the snapshot keeps them.
    buyers = np.sort(np.minimum((rng.pareto(1.2, orders) * customers / 8).astype(np.int64), len(owner) - 1))
    with pq.ParquetWriter(folder / "orders.parquet", _orders_schema()) as writer:
        for start in range(0, orders, CHUNK):
            n = min(CHUNK, orders - start)
            buyer = buyers[start : start + n]
            ordered = end_us - rng.integers(0, SPAN_DAYS * DAY_SECONDS * 1_000_000, n)
            amount = np.maximum(rng.lognormal(9.5, 1.0, n).astype(np.int64), 100)
            fate = rng.random(n)
            paid = fate >= 0.04  # 4% never paid
            cancelled = fate < 0.04
            refunded = (fate >= 0.04) & (fate < 0.06)
            platform = pa.array(np.where(buyer < customers, "tmall", "jd"))
            ts = pa.timestamp("us")  # UTC, as the snapshots keep it
            at = pa.array(ordered + 600_000_000, ts)
            nulls = pa.nulls(n, ts)
            writer.write_table(
                pa.table(
                    {
                        "id": pc.binary_join_element_wise(
                            "ord_", pc.cast(pa.array(np.arange(start, start + n)), pa.string()), ""
                        ),
                        "platform": platform,
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
                        "code": pa.array(np.arange(start, start + n, dtype=np.int32)),
                        "platform_code": places_in(platform, PLATFORMS),
                        "buyer_code": pa.array(buyer.astype(np.int32)),
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
            ("code", pa.int32()),
            ("platform_code", pa.int8()),
            ("buyer_code", pa.int32()),
        ]
    )


CHECKSUM = """
SELECT count(*) AS people, sum(r_score * 100 + f_score * 10 + m_score) AS scores,
       sum(frequency) AS orders, sum(monetary_fen) AS spend,
       sum(hash(profile_id || ':' || rfm_group) % 1000003) AS placed
FROM result
"""


STAGE_CHECKSUM = """
SELECT count(*), sum(hash(profile_id || ':' || stage) % 1000003),
       count(*) FILTER (WHERE stage = 'prospect'), count(*) FILTER (WHERE stage = 'lost'),
       count(*) FILTER (WHERE stage = 'dormant'), count(*) FILTER (WHERE stage = 'loyal'),
       count(*) FILTER (WHERE stage = 'active'), count(*) FILTER (WHERE stage = 'new')
FROM stages
"""

TAG_CHECKSUM = """
SELECT tag, count(*), sum(hash(profile_id) % 1000003) FROM tagged GROUP BY tag ORDER BY tag
"""

Results = tuple[pa.Table, pa.Table, pa.Table]  # RFM, lifecycle stages, rule tags (tag, profile_id)


def checksum(results: Results) -> tuple[int, ...]:
    con = duckdb.connect()
    con.register("result", results[0])
    con.register("stages", results[1])
    con.register("tagged", results[2])
    [rfm_row] = con.sql(CHECKSUM).fetchall()
    [stage_row] = con.sql(STAGE_CHECKSUM).fetchall()
    tag_rows = con.sql(TAG_CHECKSUM).fetchall()
    con.close()
    assert len(tag_rows) == len(RULE_TAGS), "a rule tag has no one"
    return tuple(int(v) for v in (*rfm_row, *stage_row, *(x for r in tag_rows for x in r[1:])))


def run_siyu(folder: Path) -> Results:
    """As a batch run computes: people numbered, RFM and lifecycle over the same purchases, the
    rule tags over those results; people turned back into ids on the way out."""
    con = ibis.duckdb.connect()
    orders = con.read_parquet(folder / "orders.parquet")
    identities, keys = numbered_identities(con, folder / "identities.parquet", copy=False)  # as a run reads them
    everyone = ibis.memtable(pa.table({"profile_id": pa.array(np.arange(len(keys), dtype=np.int32))}))
    rules = {name: parse_rule(rule) for name, rule in RULE_TAGS.items()}
    # As a run keeps them: with their stores only if a tag's rule names one.
    kept = kept_purchases(orders, identities, store=names_a_store(rules.values()))
    bought = named_platforms(con.create_table("purchases", kept, temp=True))  # platforms kept as codes
    windows = {CONFIG.window_days, DEFAULT_MODEL.window_days}
    # As a run groups them: RFM, stages and the tags' recent order aggregates at once.
    tallies = recent_purchase_tallies(rules.values(), Moment(AS_OF))
    first = DEFAULT_MODEL.reads_first_purchase
    totals = con.create_table("totals", purchase_totals(bought, AS_OF, windows, tallies, first), temp=True)
    scores = scored_rfm(totals, AS_OF, CONFIG).to_pyarrow()
    stages = staged(everyone, totals, AS_OF, DEFAULT_MODEL).to_pyarrow()
    inputs = RuleInputs(
        people=everyone,
        rfm=ibis.memtable(scores),  # read in Arrow, as a run's rules read them
        lifecycle=ibis.memtable(stages),
        purchases=bought,
        tallies=totals,
    )
    # As a run evaluates them: as bitmaps over the codes, each leaf asked once.
    specs = [TagSpec(name, name, "rule", rule, None) for name, rule in RULE_TAGS.items()]
    held = pa.schema([("profile_id", pa.int32()), ("tag_id", pa.string()), ("value", pa.string())]).empty_table()
    someone = np.asarray(keys.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    by_tag = evaluate_tags(con, specs, inputs, {}, Moment(AS_OF), held, someone)
    tagged = pa.concat_tables(
        pa.table({"tag": pa.repeat(tag, members.num_rows), "profile_id": members.column("profile_id")})
        for tag, members in by_tag.items()
    )
    con.disconnect()
    return tuple(_decoded(t, keys) for t in (scores, stages, tagged))  # type: ignore[return-value]


def _decoded(table: pa.Table, keys: pa.Array) -> pa.Table:
    at = table.schema.get_field_index("profile_id")
    return table.set_column(at, "profile_id", keys.take(table.column("profile_id")))


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
    SELECT i.profile_id, epoch(o.paid_at) AS at_s, o.paid_at, o.paid_fen
    FROM read_parquet('{folder / "orders.parquet"}') o
    JOIN read_parquet('{folder / "identities.parquet"}') i ON o.buyer_code = i.code
    WHERE o.paid_at IS NOT NULL AND o.cancelled_at IS NULL AND o.refunded_at IS NULL
      AND i.profile_id IS NOT NULL AND epoch(o.paid_at) <= {now_s}
), people AS (
    SELECT profile_id, max(paid_at) AS last_purchase_at,
           count(*) FILTER (WHERE at_s > {start_s}) AS frequency,
           coalesce(sum(paid_fen) FILTER (WHERE at_s > {start_s}), 0)::BIGINT AS monetary_fen,
           floor(({now_s} - max(at_s)) / {DAY_SECONDS})::BIGINT AS recency_days
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


def hand_lifecycle_sql(folder: Path) -> str:
    """The default stage model (see siyu.analytics.lifecycle), by hand."""
    now_s = int(AS_OF.timestamp())
    start_s = now_s - DEFAULT_MODEL.window_days * DAY_SECONDS
    return f"""
WITH seen AS (
    SELECT i.profile_id, epoch(o.paid_at) AS at_s
    FROM read_parquet('{folder / "orders.parquet"}') o
    JOIN read_parquet('{folder / "identities.parquet"}') i ON o.buyer_code = i.code
    WHERE o.paid_at IS NOT NULL AND o.cancelled_at IS NULL AND o.refunded_at IS NULL
      AND i.profile_id IS NOT NULL AND epoch(o.paid_at) <= {now_s}
), bought AS (
    SELECT profile_id, count(*) AS total, count(*) FILTER (WHERE at_s > {start_s}) AS in_window,
           floor(({now_s} - max(at_s)) / {DAY_SECONDS})::BIGINT AS days_since_last
    FROM seen GROUP BY profile_id
), everyone AS (
    SELECT DISTINCT profile_id FROM read_parquet('{folder / "identities.parquet"}') WHERE profile_id IS NOT NULL
)
SELECT e.profile_id,
       CASE WHEN coalesce(b.total, 0) = 0 THEN 'prospect'
            WHEN b.days_since_last > 365 THEN 'lost'
            WHEN b.days_since_last > 180 THEN 'dormant'
            WHEN b.in_window >= 4 THEN 'loyal'
            WHEN b.total >= 2 THEN 'active'
            ELSE 'new' END AS stage
FROM everyone e LEFT JOIN bought b USING (profile_id)
"""


def hand_tags_sql(folder: Path) -> list[tuple[str, str]]:
    """The rule tags by hand, over the RFM (``scores``) and stage (``stages``) results."""
    now_s = int(AS_OF.timestamp())
    bought = "bought"  # the purchases, joined once (see run_sql)
    return [
        (
            "valuable_and_active",
            "SELECT s.profile_id FROM scores s JOIN stages g USING (profile_id) "
            "WHERE s.rfm_group IN ('important_value', 'important_develop') AND g.stage IN ('loyal', 'active')",
        ),
        (
            "bought_twice_in_30_days",
            f"SELECT profile_id FROM {bought} WHERE at_s >= {now_s - 30 * DAY_SECONDS} AND at_s <= {now_s} "
            "GROUP BY profile_id HAVING count(*) >= 2",
        ),
        (
            "spent_1000_yuan_in_a_year",
            f"SELECT profile_id FROM {bought} WHERE at_s >= {now_s - 365 * DAY_SECONDS} AND at_s <= {now_s} "
            "GROUP BY profile_id HAVING sum(paid_fen) >= 100000",
        ),
        (
            "sleeping_big_spenders",
            "SELECT g.profile_id FROM stages g JOIN scores s USING (profile_id) "
            "WHERE g.stage = 'dormant' AND s.m_score >= 4",
        ),
        ("not_lost", "SELECT profile_id FROM stages WHERE stage <> 'lost'"),
    ]


def run_sql(folder: Path) -> Results:
    con = duckdb.connect()
    scores = con.sql(hand_sql(folder)).to_arrow_table()
    stages = con.sql(hand_lifecycle_sql(folder)).to_arrow_table()
    con.register("scores", scores)
    con.register("stages", stages)
    con.sql(
        "CREATE TEMP TABLE bought AS SELECT i.profile_id, epoch(o.paid_at) AS at_s, o.paid_fen "
        f"FROM read_parquet('{folder / 'orders.parquet'}') o "
        f"JOIN read_parquet('{folder / 'identities.parquet'}') i ON o.buyer_code = i.code "
        "WHERE o.paid_at IS NOT NULL AND o.cancelled_at IS NULL AND o.refunded_at IS NULL AND i.profile_id IS NOT NULL"
    )
    union = " UNION ALL ".join(
        f"SELECT '{name}' AS tag, profile_id FROM ({sql})" for name, sql in hand_tags_sql(folder)
    )
    tagged = con.sql(union).to_arrow_table()
    con.close()
    return scores, stages, tagged


def run_pandas(folder: Path) -> Results:
    import pandas as pd

    orders = pd.read_parquet(
        folder / "orders.parquet", columns=["buyer_code", "paid_fen", "paid_at", "refunded_at", "cancelled_at"]
    )
    identities = pd.read_parquet(folder / "identities.parquet", columns=["code", "profile_id"])
    now_s = int(AS_OF.timestamp())
    start_s = now_s - CONFIG.window_days * DAY_SECONDS
    paid = orders[orders.paid_at.notna() & orders.cancelled_at.isna() & orders.refunded_at.isna()]
    seen = paid.merge(identities, left_on="buyer_code", right_on="code")
    seen = seen[seen.profile_id.notna()]
    at_s = seen.paid_at.to_numpy().astype("datetime64[us]").astype("int64") / 1e6  # seconds, with fractions
    seen = seen.assign(at_s=at_s)
    seen = seen[seen.at_s <= now_s]
    in_window = seen.at_s > start_s
    seen = seen.assign(f=in_window.astype("int64"), m=seen.paid_fen.where(in_window, 0))
    people = seen.groupby("profile_id", sort=False).agg(
        last_purchase_at=("paid_at", "max"), last_s=("at_s", "max"), frequency=("f", "sum"), monetary_fen=("m", "sum")
    )
    people["recency_days"] = ((now_s - people.last_s) // DAY_SECONDS).astype("int64")
    n = len(people)
    people["r_score"] = 1 + (people.recency_days.rank(method="min", ascending=False).astype("int64") - 1) * 5 // n
    people["f_score"] = 1 + (people.frequency.rank(method="min").astype("int64") - 1) * 5 // n
    people["m_score"] = 1 + (people.monetary_fen.rank(method="min").astype("int64") - 1) * 5 // n
    high = [people[c] >= 3 for c in ("r_score", "f_score", "m_score")]
    people["rfm_group"] = "general_retain"
    for (r, f, m), code in GROUPS.items():
        people.loc[(high[0] == r) & (high[1] == f) & (high[2] == m), "rfm_group"] = code
    everyone = identities.profile_id.dropna().drop_duplicates()
    bought = seen.groupby("profile_id", sort=False).agg(total=("f", "size"), in_window=("f", "sum"))
    stages = pd.DataFrame({"profile_id": everyone}).merge(
        bought.join(people[["last_s"]]), left_on="profile_id", right_index=True, how="left"
    )
    total = stages.total.fillna(0)
    days = (now_s - stages.last_s) // DAY_SECONDS
    stages["stage"] = "new"
    for stage, rule in reversed(
        [
            ("prospect", total == 0),
            ("lost", days > 365),
            ("dormant", days > 180),
            ("loyal", stages.in_window.fillna(0) >= 4),
            ("active", total >= 2),
        ]
    ):
        stages.loc[rule.fillna(False).astype(bool), "stage"] = stage
    scores = people.drop(columns="last_s").reset_index()
    tagged = _pandas_tags(scores, stages, seen, now_s)
    return (
        pa.Table.from_pandas(scores, preserve_index=False),
        pa.Table.from_pandas(stages[["profile_id", "stage"]], preserve_index=False),
        pa.Table.from_pandas(tagged, preserve_index=False),
    )


def _pandas_tags(scores: Any, stages: Any, seen: Any, now_s: int) -> Any:
    import pandas as pd

    both = scores[["profile_id", "rfm_group", "m_score"]].merge(stages[["profile_id", "stage"]], on="profile_id")
    recent = seen[(seen.at_s >= now_s - 30 * DAY_SECONDS) & (seen.at_s <= now_s)]
    year = seen[(seen.at_s >= now_s - 365 * DAY_SECONDS) & (seen.at_s <= now_s)]
    twice = recent.groupby("profile_id").size()
    spent = year.groupby("profile_id").paid_fen.sum()
    members = {
        "valuable_and_active": both.profile_id[
            both.rfm_group.isin(["important_value", "important_develop"]) & both.stage.isin(["loyal", "active"])
        ],
        "bought_twice_in_30_days": pd.Series(twice[twice >= 2].index),
        "spent_1000_yuan_in_a_year": pd.Series(spent[spent >= 100_000].index),
        "sleeping_big_spenders": both.profile_id[(both.stage == "dormant") & (both.m_score >= 4)],
        "not_lost": stages.profile_id[stages.stage != "lost"],
    }
    return pd.concat(
        [pd.DataFrame({"tag": name, "profile_id": ids.to_numpy()}) for name, ids in members.items()], ignore_index=True
    )


def timed(fn: Callable[[Path], Results], folder: Path, repeat: int) -> tuple[float, tuple[int, ...]]:
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
        print(
            f"RFM, lifecycle stages and {len(RULE_TAGS)} rule tags on {args.orders:,} orders, "
            f"median of {args.repeat} runs"
        )
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
