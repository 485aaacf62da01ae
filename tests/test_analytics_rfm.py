"""RFM as Ibis expressions: scores and groups worked out by hand, both scorings and both splits,
ties, and bad configurations refused with where the problem is; the same results on DuckDB,
PostgreSQL and Spark."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import pyarrow as pa
import pytest

from siyu.analytics.rfm import RfmConfig, Split, rfm
from siyu.core.errors import ValidationFailedError

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def purchases(rows: list[tuple[str, float, int]]) -> pa.Table:
    """(profile, days before AS_OF, amount in fen) → the purchases table."""
    return pa.table(
        {
            "profile_id": [r[0] for r in rows],
            "at": pa.array([AS_OF - timedelta(days=r[1]) for r in rows], pa.timestamp("us", tz="UTC")),
            "amount_fen": pa.array([r[2] for r in rows], pa.int64()),
        }
    )


SCENARIO = [
    ("p1", 5, 10_000),
    ("p1", 40, 20_000),
    ("p2", 200, 500_000),
    ("p3", 400, 30_000),  # outside the 365-day window: a recency, no frequency or spend
    ("p4", 1.5, 60_000),
    ("p4", 3, 60_000),
    ("p4", 10, 60_000),
    ("p5", 100, 5_000),
    ("p6", -2, 99_999),  # after AS_OF: not seen yet
]


def by_profile(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {r["profile_id"]: r for r in table.to_pylist()}


def test_thresholds_and_score_split_by_hand() -> None:
    con = ibis.duckdb.connect()
    table = con.create_table("p", purchases(SCENARIO))
    got = by_profile(rfm(table, AS_OF, RfmConfig(scoring="thresholds")).to_pyarrow())
    assert set(got) == {"p1", "p2", "p3", "p4", "p5"}
    p1, p2, p3, p4, p5 = (got[p] for p in ("p1", "p2", "p3", "p4", "p5"))
    assert (p1["recency_days"], p1["frequency"], p1["monetary_fen"]) == (5, 2, 30_000)
    assert (p1["r_score"], p1["f_score"], p1["m_score"], p1["rfm_group"]) == (5, 2, 2, "general_develop")
    assert (p2["r_score"], p2["f_score"], p2["m_score"], p2["rfm_group"]) == (2, 1, 4, "important_retain")
    assert (p3["recency_days"], p3["frequency"], p3["monetary_fen"]) == (400, 0, 0)
    assert (p3["r_score"], p3["f_score"], p3["m_score"], p3["rfm_group"]) == (1, 1, 1, "general_retain")
    assert (p4["recency_days"], p4["frequency"], p4["monetary_fen"]) == (1, 3, 180_000)
    assert (p4["r_score"], p4["f_score"], p4["m_score"], p4["rfm_group"]) == (5, 3, 3, "important_value")
    assert (p5["r_score"], p5["f_score"], p5["m_score"], p5["rfm_group"]) == (3, 1, 1, "general_develop")
    assert p4["last_purchase_at"] == AS_OF - timedelta(days=1.5)


def test_quintiles_share_scores_on_ties_and_split_by_mean() -> None:
    rows = [(f"q{i}", i * 10 + 1, (i + 1) * 1000) for i in range(10)]
    rows.append(("tie", 41, 5000))  # the same recency and spend as q4
    con = ibis.duckdb.connect()
    config = RfmConfig(split={"recency": Split("mean"), "frequency": Split("score", 5), "monetary": Split("mean")})
    got = by_profile(rfm(con.create_table("p", purchases(rows)), AS_OF, config).to_pyarrow())
    # Ranked by days descending: q9 (91 days) is rank 0 of 11 → 1; q0 (1 day) is rank 10 → 1 + 50 // 11 = 5.
    assert got["q9"]["r_score"] == 1 and got["q0"]["r_score"] == 5
    assert got["tie"]["r_score"] == got["q4"]["r_score"]
    assert got["tie"]["m_score"] == got["q4"]["m_score"]
    assert {r["f_score"] for r in got.values()} == {1}  # everyone bought once: one rank
    # By mean: recent is at most the mean days (45.5), much is at least the mean spend (5,454.5 fen).
    mean_days = sum(r[1] for r in rows) / len(rows)
    mean_fen = sum(r[2] for r in rows) / len(rows)
    for profile, days, fen in rows:
        expected = {(True, True): "important_develop", (True, False): "general_develop"}
        expected |= {(False, True): "important_retain", (False, False): "general_retain"}
        assert got[profile]["rfm_group"] == expected[(days <= mean_days, fen >= mean_fen)], profile
    assert got["q0"]["rfm_group"] == "general_develop" and got["q9"]["rfm_group"] == "important_retain"


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"window_days": 0}, "window_days"),
        ({"window_days": "year"}, "window_days"),
        ({"thresholds": {"recency": [30, 20, 180, 365]}}, "thresholds.recency"),
        ({"thresholds": {"monetary": [1, 2, 3]}}, "thresholds.monetary"),
        ({"split": {"frequency": {"by": "score", "at_least": 6}}}, "split.frequency"),
        ({"split": {"frequency": {"by": "median"}}}, "split.frequency"),
        ({"split": {"recency": {"below": 3}}}, "split.recency"),
    ],
)
def test_bad_configurations_are_refused_naming_the_setting(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        RfmConfig.from_dict(data)
    assert caught.value.details == {"path": path}


def test_configuration_round_trips() -> None:
    config = RfmConfig.from_dict({"window_days": 180, "scoring": "thresholds", "split": {"monetary": {"by": "mean"}}})
    assert RfmConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValidationFailedError, match="unknown RFM settings"):
        RfmConfig.from_dict({"windows": 3})


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    out = []
    for r in table.to_pylist():
        r["last_purchase_at"] = r["last_purchase_at"].astimezone(UTC)
        out.append(tuple(r[k] for k in sorted(r)))
    return sorted(out)


CONFIGS = [
    RfmConfig(),
    RfmConfig(scoring="thresholds", split={d: Split("mean") for d in ("recency", "frequency", "monetary")}),
]


def _many() -> pa.Table:
    rows = [(f"p{i % 37}", (i * 7) % 500 + 0.25, (i * 7919) % 90_000) for i in range(400)]
    return purchases(rows)


@pytest.mark.parametrize("config", CONFIGS)
def test_postgres_gives_duckdbs_results(postgres: Any, config: RfmConfig) -> None:
    data = _many()
    expected = _rows(rfm(ibis.duckdb.connect().create_table("p", data), AS_OF, config).to_pyarrow())
    table = postgres.create_table(f"rfm_{uuid.uuid4().hex}", data, temp=True)
    assert _rows(rfm(table, AS_OF, config).to_pyarrow()) == expected


def test_spark_gives_duckdbs_results(spark: Any) -> None:
    data = _many()
    for config in CONFIGS:
        expected = _rows(rfm(ibis.duckdb.connect().create_table("p", data), AS_OF, config).to_pyarrow())
        name = f"rfm_{uuid.uuid4().hex}"
        spark._session.createDataFrame(data).createOrReplaceTempView(name)  # Spark has no temporary tables
        table = spark.table(name)
        assert _rows(rfm(table, AS_OF, config).to_pyarrow()) == expected
