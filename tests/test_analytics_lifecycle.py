"""Lifecycle stages as Ibis expressions: the default model by hand, a workspace's own model, models
that cannot be understood refused with where the problem is, and the same stages on DuckDB,
PostgreSQL and Spark."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import ibis
import pyarrow as pa
import pytest

from siyu.analytics.inputs import purchase_totals
from siyu.analytics.lifecycle import DEFAULT_MODEL, StageModel, lifecycle, staged
from siyu.core.errors import ValidationFailedError
from tests.test_analytics_rfm import AS_OF, purchases

PEOPLE = ["never", "once_recent", "once_old", "lapsed", "twice", "fan"]
BOUGHT = [
    ("once_recent", 10, 1000),
    ("once_old", 200, 1000),  # 沉睡: more than 180 days
    ("lapsed", 400, 1000),  # 流失: more than 365 days
    ("lapsed", 500, 1000),
    ("twice", 30, 1000),
    ("twice", 90, 1000),
    *[("fan", d, 5000) for d in (2, 40, 80, 120, 160)],
]


def when(metric: str, op: str, value: int) -> dict[str, Any]:
    return {"metric": metric, "op": op, "value": value}


def stage(code: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    return {"code": code, "name": code.upper(), "when": list(conditions)}


def people_table(names: list[str]) -> pa.Table:
    return pa.table({"profile_id": names})


def stages(model: StageModel, names: list[str], bought: list[tuple[str, float, int]]) -> dict[str, str]:
    con = ibis.duckdb.connect()
    got = lifecycle(
        con.create_table("people", people_table(names)), con.create_table("p", purchases(bought)), AS_OF, model
    )
    return {r["profile_id"]: r["stage"] for r in got.to_pyarrow().to_pylist()}


def test_the_default_model_by_hand() -> None:
    assert stages(DEFAULT_MODEL, PEOPLE, BOUGHT) == {
        "never": "prospect",
        "once_recent": "new",
        "once_old": "dormant",
        "lapsed": "lost",
        "twice": "active",
        "fan": "loyal",
    }
    assert [s.name for s in DEFAULT_MODEL.stages] == ["潜客", "流失", "沉睡", "忠诚", "活跃/复购", "新客"]


def test_a_workspaces_own_model_with_conditions_together() -> None:
    model = StageModel.from_dict(
        {
            "window_days": 180,
            "stages": [
                {"code": "vip", "name": "高价值", "when": [
                    {"metric": "spend_in_window_fen", "op": ">=", "value": 20000},
                    {"metric": "days_since_last_purchase", "op": "<=", "value": 30},
                ]},
                {"code": "buyer", "name": "已购", "when": [{"metric": "purchases_total", "op": ">", "value": 0}]},
                {"code": "other", "name": "其他", "when": []},
            ],
        }
    )  # fmt: skip
    assert StageModel.from_dict(model.to_dict()) == model
    got = stages(model, PEOPLE, BOUGHT)
    # fan spent 25,000 within 180 days, last 2 days ago; twice spent 2,000.
    assert got["fan"] == "vip" and got["twice"] == "buyer" and got["never"] == "other"
    # A condition on a metric the person lacks does not hold: never bought, so no recency.
    unknown_recency = StageModel.from_dict(
        {"stages": [stage("recent", when("days_since_last_purchase", "<", 9999)), stage("rest")]}
    )  # fmt: skip
    assert stages(unknown_recency, ["never", "twice"], BOUGHT) == {"never": "rest", "twice": "recent"}


def test_the_first_purchase_is_found_only_for_models_that_ask() -> None:
    """A run's totals leave the first purchase out unless a stage asks how long ago it was;
    stages come out the same either way."""
    newcomers = StageModel.from_dict(
        {"stages": [stage("newcomer", when("days_since_first_purchase", "<=", 60)), stage("rest")]}
    )
    assert newcomers.reads_first_purchase and not DEFAULT_MODEL.reads_first_purchase
    con = ibis.duckdb.connect()
    people = con.create_table("people", people_table(PEOPLE))
    bought = con.create_table("bought", purchases(BOUGHT))
    for model, expected in ((newcomers, {"once_recent"}), (DEFAULT_MODEL, None)):
        totals = purchase_totals(bought, AS_OF, [model.window_days], first=model.reads_first_purchase)
        assert ("first_at" in totals.columns) == model.reads_first_purchase
        got = {r["profile_id"]: r["stage"] for r in staged(people, totals, AS_OF, model).to_pyarrow().to_pylist()}
        assert got == stages(model, PEOPLE, BOUGHT)
        if expected is not None:
            assert {p for p, code in got.items() if code == "newcomer"} == expected


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"stages": [stage("a"), stage("b")]}, "stages[0].when"),
        ({"stages": [stage("a", when("purchases_total", ">", 1))] * 2}, "stages[1].code"),
        ({"stages": [stage("a", when("spend", ">", 1)), stage("b")]}, "stages[0].when[0]"),
        ({"stages": [stage("a", when("purchases_total", "~", 1)), stage("b")]}, "stages[0].when[0]"),
        ({"stages": [stage("a", when("purchases_total", ">", -1)), stage("b")]}, "stages[0].when[0]"),
        (
            {"stages": [stage("a", when("purchases_total", ">", 1)), stage("b", when("purchases_total", ">", 0))]},
            "stages[1].when",
        ),
        ({"stages": [{"code": "Bad Code", "name": "A", "when": []}, {"code": "b", "name": "B"}]}, "stages[0].code"),
        ({"stages": [{"code": "only", "name": "A", "when": []}]}, "stages"),
        ({"window_days": 0}, "window_days"),
        ({"stages": "all"}, "stages"),
    ],
)  # fmt: skip
def test_models_that_cannot_be_understood_are_refused(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        StageModel.from_dict(data)
    assert caught.value.details == {"path": path}


def _many() -> tuple[pa.Table, pa.Table]:
    rows = [(f"p{i % 41}", (i * 13) % 700 + 0.5, (i * 7919) % 90_000) for i in range(300)]
    return people_table([f"p{i}" for i in range(50)]), purchases(rows)


def _expected(people: pa.Table, bought: pa.Table) -> list[tuple[str, str]]:
    con = ibis.duckdb.connect()
    got = lifecycle(con.create_table("people", people), con.create_table("p", bought), AS_OF, DEFAULT_MODEL)
    return sorted((r["profile_id"], r["stage"]) for r in got.to_pyarrow().to_pylist())


def test_postgres_gives_duckdbs_stages(postgres: Any) -> None:
    people, bought = _many()
    tag = uuid.uuid4().hex
    got = lifecycle(
        postgres.create_table(f"people_{tag}", people, temp=True),
        postgres.create_table(f"bought_{tag}", bought, temp=True),
        AS_OF,
        DEFAULT_MODEL,
    )
    assert sorted((r["profile_id"], r["stage"]) for r in got.to_pyarrow().to_pylist()) == _expected(people, bought)


def test_spark_gives_duckdbs_stages(spark: Any) -> None:
    people, bought = _many()
    tables = []
    for table in (people, bought):
        name = f"lifecycle_{uuid.uuid4().hex}"
        spark._session.createDataFrame(table).createOrReplaceTempView(name)
        tables.append(spark.table(name))
    got = lifecycle(tables[0], tables[1], AS_OF, DEFAULT_MODEL)
    assert sorted((r["profile_id"], r["stage"]) for r in got.to_pyarrow().to_pylist()) == _expected(people, bought)


def test_engagement_from_events() -> None:
    model = StageModel.from_dict(
        {
            "stages": [
                stage("engaged_prospect", when("purchases_total", "=", 0), when("days_since_last_seen", "<=", 7)),
                stage("cold_prospect", when("purchases_total", "=", 0)),
                stage("buyer"),
            ]
        }
    )
    con = ibis.duckdb.connect()
    seen = pa.table(
        {
            "profile_id": ["browsing", "gone_quiet", "twice"],
            "last_seen_at": pa.array([AS_OF - timedelta(days=d) for d in (2, 40, 1)], pa.timestamp("us", tz="UTC")),
        }
    )
    names = ["browsing", "gone_quiet", "never_seen", "twice"]
    got = lifecycle(
        con.create_table("people", people_table(names)),
        con.create_table("p", purchases(BOUGHT)),
        AS_OF,
        model,
        con.create_table("seen", seen),
    ).to_pyarrow()
    assert {r["profile_id"]: r["stage"] for r in got.to_pylist()} == {
        "browsing": "engaged_prospect",
        "gone_quiet": "cold_prospect",
        "never_seen": "cold_prospect",  # never seen: the engagement condition does not hold
        "twice": "buyer",
    }
