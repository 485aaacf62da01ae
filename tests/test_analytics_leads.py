"""Lead scoring as Ibis expressions: points by event name or type, halved every half-life, graded;
models that cannot be understood refused with where the problem is; the same scores on DuckDB,
PostgreSQL and Spark."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import ibis
import pyarrow as pa
import pytest

from siyu.analytics.leads import LeadModel, lead_scores, trait_points
from siyu.core.errors import ValidationFailedError
from siyu.rules.compiler import Moment, RuleInputs
from tests.test_analytics_rfm import AS_OF


def events(rows: list[tuple[str, str, str | None, float]]) -> pa.Table:
    """(profile, type, event name, days before AS_OF)."""
    return pa.table(
        {
            "profile_id": [r[0] for r in rows],
            "type": [r[1] for r in rows],
            "event": pa.array([r[2] for r in rows], pa.string()),
            "timestamp": pa.array([AS_OF - timedelta(days=r[3]) for r in rows], pa.timestamp("us", tz="UTC")),
        }
    )


ROWS = [
    ("hot", "track", "Demo Requested", 0),  # 30
    ("hot", "track", "Form Submitted", 30),  # 20 halved: 10
    ("hot", "track", "Whitepaper Downloaded", 60),  # 10 quartered: 2.5
    ("hot", "page", None, 0),  # 1
    ("warm", "track", "Form Submitted", 0),  # 20
    ("warm", "page", None, 30),  # 0.5
    ("cold", "page", None, 90),  # 0.125
    ("cold", "track", "Product Viewed", 0),  # no rule: nothing
    ("future", "track", "Demo Requested", -1),  # after AS_OF: not yet
]


def scores(model: LeadModel, rows: list[tuple[str, str, str | None, float]] = ROWS) -> dict[str, tuple[float, str]]:
    con = ibis.duckdb.connect()
    got = lead_scores(con.create_table("e", events(rows)), AS_OF, model).to_pyarrow()
    return {r["profile_id"]: (r["score"], r["grade"]) for r in got.to_pylist()}


def test_the_default_model_by_hand() -> None:
    assert scores(LeadModel()) == {"hot": (43.5, "C"), "warm": (20.5, "C"), "cold": (0.13, "D")}


def test_a_workspaces_own_model_with_points_against() -> None:
    model = LeadModel.from_dict(
        {
            "half_life_days": 60,
            "rules": [{"event": "Demo Requested", "points": 50}, {"event": "Unsubscribed", "points": -40}],
            "grades": [{"name": "热", "at_least": 40}, {"name": "冷", "at_least": 0}],
        }
    )
    assert LeadModel.from_dict(model.to_dict()) == model
    rows = [("hot", "track", "Demo Requested", 0), ("gone", "track", "Demo Requested", 0)]
    rows.append(("gone", "track", "Unsubscribed", 0))
    assert scores(model, rows) == {"hot": (50.0, "热"), "gone": (10.0, "冷")}


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"half_life_days": 0}, "half_life_days"),
        ({"rules": []}, "rules"),
        ({"rules": [{"points": 5}]}, "rules[0]"),
        ({"rules": [{"event": 5, "points": 5}]}, "rules[0]"),
        ({"rules": [{"event": "  ", "points": 5}]}, "rules[0]"),
        ({"rules": [{"event": "A", "type": "page", "points": 5}]}, "rules[0]"),
        ({"rules": [{"type": "click", "points": 5}]}, "rules[0]"),
        ({"rules": [{"event": "A", "points": 0}]}, "rules[0].points"),
        ({"rules": [{"event": "A", "points": "lots"}]}, "rules[0].points"),
        ({"grades": [{"name": "A", "at_least": 10}, {"name": "B", "at_least": 20}]}, "grades"),
        ({"grades": [{"name": "A"}]}, "grades[0]"),
    ],
)
def test_models_that_cannot_be_understood_are_refused(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        LeadModel.from_dict(data)
    assert caught.value.details == {"path": path}


def _sorted(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted((r["profile_id"], r["score"], r["grade"]) for r in table.to_pylist())


def _on_duckdb() -> list[tuple[Any, ...]]:
    table = ibis.duckdb.connect().create_table("e", events(ROWS))
    return _sorted(lead_scores(table, AS_OF, LeadModel()).to_pyarrow())


def test_postgres_gives_duckdbs_scores(postgres: Any) -> None:
    table = postgres.create_table(f"e_{uuid.uuid4().hex}", events(ROWS), temp=True)
    expected = _sorted(
        lead_scores(ibis.duckdb.connect().create_table("e", events(ROWS)), AS_OF, LeadModel()).to_pyarrow()
    )
    assert _sorted(lead_scores(table, AS_OF, LeadModel()).to_pyarrow()) == expected


def test_spark_gives_duckdbs_scores(spark: Any) -> None:
    name = f"e_{uuid.uuid4().hex}"
    spark._session.createDataFrame(events(ROWS)).createOrReplaceTempView(name)
    expected = _sorted(
        lead_scores(ibis.duckdb.connect().create_table("e", events(ROWS)), AS_OF, LeadModel()).to_pyarrow()
    )
    assert _sorted(lead_scores(spark.table(name), AS_OF, LeadModel()).to_pyarrow()) == expected


def test_trait_conditions_add_points_without_fading() -> None:
    model = LeadModel.from_dict(
        {
            "rules": [
                {"event": "Demo Requested", "points": 30},
                {
                    "when": {"type": "trait", "key": "industry", "value_type": "string", "op": "eq", "value": "零售"},
                    "points": 25,
                },
                {
                    "when": {
                        "type": "and",
                        "conditions": [
                            {"type": "trait", "key": "employees", "value_type": "number", "op": "gte", "value": 200},
                            {
                                "type": "not",
                                "condition": {
                                    "type": "trait",
                                    "key": "student",
                                    "value_type": "boolean",
                                    "op": "is_true",
                                },
                            },
                        ],
                    },
                    "points": 20,
                },
            ]
        }
    )
    assert model.to_dict()["rules"][1]["when"]["key"] == "industry"
    con = ibis.duckdb.connect()
    traits = pa.table(
        {
            "profile_id": ["hot", "warm", "warm", "nobody-yet", "kid", "kid"],
            "key": ["industry", "industry", "employees", "employees", "employees", "student"],
            "kind": ["s", "s", "n", "n", "n", "b"],
            "text": ["零售", "制造", None, None, None, None],
            "number": pa.array([None, None, 500, 300, 900, None], pa.float64()),
            "time": pa.array([None] * 6, pa.timestamp("us")),
            "flag": pa.array([None, None, None, None, None, True], pa.bool_()),
        }
    )
    people = con.create_table("p", pa.table({"profile_id": ["hot", "warm", "nobody-yet", "kid"]}))
    inputs = RuleInputs(people=people, traits=con.create_table("t", traits))
    extra = trait_points(model, inputs, Moment(AS_OF))
    got = lead_scores(con.create_table("e", events(ROWS)), AS_OF, model, extra).to_pyarrow().to_pylist()
    assert {r["profile_id"]: r["score"] for r in got} == {"hot": 55.0, "warm": 20.0, "nobody-yet": 20.0}


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"when": {"type": "event", "event": "X"}, "points": 5}, "rules[0].when"),
        ({"when": {"type": "and", "conditions": []}, "points": 5}, "rules[0].when.conditions"),
        (
            {
                "when": {"type": "trait", "key": "k", "value_type": "string", "op": "eq", "value": "v"},
                "event": "X",
                "points": 5,
            },
            "rules[0]",
        ),
    ],
)
def test_a_bad_trait_condition_is_refused_with_its_place(rule: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        LeadModel.from_dict({"rules": [rule]})
    assert caught.value.details == {"path": path}
