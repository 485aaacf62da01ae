"""The rule compiler: a table of rules and the people each selects, worked out by hand over a
small world; one person at a time agrees with everyone at once; PostgreSQL and Spark agree with
DuckDB; malformed rules and unknown names are refused with the place of the problem."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import pyarrow as pa
import pytest

from siyu.analytics.inputs import purchase_totals
from siyu.core.errors import ValidationFailedError
from siyu.rules.buckets import bucket_of, bucket_sql
from siyu.rules.catalog import Catalog, TagRef, check_rule
from siyu.rules.compiler import (
    Moment,
    RuleInputs,
    compile_rule,
    recent_purchase_tallies,
    restricted,
    tally_column,
)
from siyu.rules.dependencies import depends_on_itself, evaluation_order
from siyu.rules.nodes import Orders, parse_rule, walk

AS_OF = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
NOW = AS_OF.replace(tzinfo=None)
PEOPLE = ["p1", "p2", "p3", "p4", "p5", "p6"]


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def _traits() -> pa.Table:
    rows: list[tuple[str, str | None, str, str | None, float | None, datetime | None, bool | None]] = [
        ("p1", "city", "s", "上海", None, None, None),
        ("p2", "city", "s", "北京", None, None, None),
        ("p3", "city", "s", "上海浦东", None, None, None),
        ("p1", "age", "n", None, 31.0, None, None),
        ("p2", "age", "n", None, 45.0, None, None),
        ("p4", "age", "n", None, 19.0, None, None),
        ("p1", "birthday", "d", "1995-03-02", None, datetime(1995, 3, 1, 16), None),
        ("p2", "member_since", "d", "2026-10-20", None, datetime(2026, 10, 19, 16), None),
        ("p3", "member_since", "d", "2025-01-01", None, datetime(2024, 12, 31, 16), None),
        ("p1", "vip", "b", None, None, None, True),
        ("p2", "vip", "b", None, None, None, False),
        ("p1", "interests", "l", "护肤", None, None, None),
        ("p1", "interests", "l", "彩妆", None, None, None),
        ("p3", "interests", "l", "香水", None, None, None),
        ("p5", None, "", None, None, None, None),  # someone with no traits
    ]
    names = ["profile_id", "key", "kind", "text", "number", "time", "flag"]
    types = [pa.string(), pa.string(), pa.string(), pa.string(), pa.float64(), pa.timestamp("us"), pa.bool_()]
    return pa.table({n: pa.array([r[i] for r in rows], t) for i, (n, t) in enumerate(zip(names, types, strict=True))})


def world() -> dict[str, pa.Table]:
    ts = pa.timestamp("us")
    return {
        "people": pa.table({"profile_id": PEOPLE}),
        "traits": _traits(),
        "rfm": pa.table(
            {
                "profile_id": ["p1", "p2", "p3"],
                "r_score": pa.array([5, 2, 1], pa.int64()),
                "f_score": pa.array([4, 3, 1], pa.int64()),
                "m_score": pa.array([5, 5, 2], pa.int64()),
                "rfm_group": ["important_value", "important_keep", "general_retain"],
            }
        ),
        "lifecycle": pa.table({"profile_id": ["p1", "p2", "p3", "p4"], "stage": ["loyal", "dormant", "lost", "new"]}),
        "tags": pa.table(
            {"profile_id": ["p1", "p2", "p4"], "tag_id": ["tg_a", "tg_a", "tg_pref"], "value": ["", "", "美妆"]}
        ),
        "purchases": pa.table(
            {
                "profile_id": ["p1", "p1", "p1", "p2", "p3"],
                "at": pa.array([ago(2), ago(20), ago(200), ago(10), ago(400)], ts),
                "amount_fen": pa.array([10_000, 30_000, 5_000, 200_000, 1_000], pa.int64()),
                "platform": ["tmall", "jd", "tmall", "tmall", "douyin"],
                "store": ["旗舰店", "京东店", "旗舰店", "旗舰店", "抖音店"],
            }
        ),
        "events": pa.table(
            {
                "profile_id": ["p1", "p1", "p1", "p2", "p4", "p4"],
                "event": [
                    "Product Viewed",
                    "Product Viewed",
                    "Signed Up",
                    "Product Viewed",
                    "Signed Up",
                    "Coupon Used",
                ],
                "timestamp": pa.array([ago(1), ago(3), ago(100), ago(50), ago(5), ago(6)], ts),
                "properties": [
                    '{"sku": "S1", "price": 199, "价格": 199, "tags": ["新品"]}',
                    '{"sku": "S2", "price": 89.5, "价格": 89.5}',
                    '{"channel": "miniprogram"}',
                    '{"sku": "S1", "price": "n/a"}',
                    "{}",
                    '{"coupon": "满199减20", "value_fen": 2000}',
                ],
            }
        ),
        "items": pa.table(
            {
                "profile_id": ["p1", "p1", "p2", "p3"],
                "at": pa.array([ago(2), ago(200), ago(10), ago(400)], ts),
                "sku": ["S1", "S2", "S3", "S1"],
                "category": ["护肤", "彩妆", "护肤", "护肤"],
                "brand": ["雪域", "花间", "雪域", "雪域"],
            }
        ),
        "reach": pa.table(
            {
                "profile_id": ["p1", "p1", "p2", "p3", "p3"],
                "channel": ["sms", "ads", "sms", "email", "wecom"],
                "purpose": ["marketing", "audience_upload", "marketing", "marketing", "marketing"],
            }
        ),
        "groups": pa.table({"profile_id": ["p2", "p3", "p3"], "group_id": ["g_vip", "g_vip", "g_new"]}),
        "segments": pa.table({"profile_id": ["p1", "p4"], "segment_id": ["sg_a", "sg_a"]}),
        "buckets": pa.table(
            {
                "profile_id": [p for _ in SEEDS for p in PEOPLE],
                "seed": [seed for seed in SEEDS for _ in PEOPLE],
                "bucket": pa.array([bucket_of(seed, p) for seed in SEEDS for p in PEOPLE], pa.int32()),
            }
        ),
    }


SEEDS = ("holdout", "ab")


def bucketed(seed: str, low: int, high: int) -> set[str]:
    return {p for p in PEOPLE if low <= bucket_of(seed, p) < high}


def inputs_on(con: Any, data: dict[str, pa.Table], prefix: str = "") -> RuleInputs:
    return RuleInputs(**{name: con.create_table(f"{prefix}{name}", table, temp=True) for name, table in data.items()})


@pytest.fixture(scope="module")
def duck() -> RuleInputs:
    return inputs_on(ibis.duckdb.connect(), world())


def select(rule: dict[str, Any], inputs: RuleInputs) -> set[str]:
    table = compile_rule(parse_rule(rule), inputs, Moment(AS_OF)).to_pyarrow()
    return set(table.column("profile_id").to_pylist())


def trait(key: str, value_type: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"type": "trait", "key": key, "value_type": value_type, "op": op, "value": value}


CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("string eq", trait("city", "string", "eq", "上海"), {"p1"}),
    ("string ne asks for the trait", trait("city", "string", "ne", "上海"), {"p2", "p3"}),
    ("string in", trait("city", "string", "in", ["北京", "上海浦东"]), {"p2", "p3"}),
    ("string not_in", trait("city", "string", "not_in", ["北京"]), {"p1", "p3"}),
    ("contains", trait("city", "string", "contains", "上海"), {"p1", "p3"}),
    ("starts_with", trait("city", "string", "starts_with", "北"), {"p2"}),
    ("exists", trait("city", "string", "exists"), {"p1", "p2", "p3"}),
    ("not_exists", trait("city", "string", "not_exists"), {"p4", "p5", "p6"}),
    ("number gte", trait("age", "number", "gte", 31), {"p1", "p2"}),
    ("number lt", trait("age", "number", "lt", 31), {"p4"}),
    ("number between", trait("age", "number", "between", [19, 31]), {"p1", "p4"}),
    ("number ne", trait("age", "number", "ne", 45), {"p1", "p4"}),
    ("date within_last_days", trait("member_since", "date", "within_last_days", 30), {"p2"}),
    ("date more_than_days_ago", trait("member_since", "date", "more_than_days_ago", 30), {"p3"}),
    ("date before, Shanghai day", trait("member_since", "date", "before", "2025-01-01"), set()),
    ("date after", trait("member_since", "date", "after", "2026-10-19"), {"p2"}),
    ("date after the day itself", trait("member_since", "date", "after", "2026-10-20"), set()),
    ("date between days", trait("birthday", "date", "between", ["1995-03-02", "1995-03-02"]), {"p1"}),
    ("date as string", trait("birthday", "string", "starts_with", "1995-"), {"p1"}),
    ("boolean true", trait("vip", "boolean", "is_true"), {"p1"}),
    ("boolean false", trait("vip", "boolean", "is_false"), {"p2"}),
    ("list includes", trait("interests", "list", "includes", ["彩妆", "香水"]), {"p1", "p3"}),
    ("list excludes", trait("interests", "list", "excludes", ["护肤"]), {"p3"}),
    ("rfm group", {"type": "rfm_group", "groups": ["important_value", "important_keep"]}, {"p1", "p2"}),
    ("rfm score", {"type": "rfm_score", "score": "r", "op": "lte", "value": 2}, {"p2", "p3"}),
    ("lifecycle", {"type": "lifecycle", "stages": ["dormant", "lost"]}, {"p2", "p3"}),
    ("has tag", {"type": "tag", "tag_id": "tg_a"}, {"p1", "p2"}),
    ("has tag value", {"type": "tag", "tag_id": "tg_pref", "values": ["美妆"]}, {"p4"}),
    ("event ever", {"type": "event", "event": "Signed Up"}, {"p1", "p4"}),
    ("event count in days", {"type": "event", "event": "Product Viewed", "count": 2, "window": {"days": 7}}, {"p1"}),
    (
        "event at most once includes never",
        {"type": "event", "event": "Product Viewed", "op": "lte", "count": 1},
        {"p2", "p3", "p4", "p5", "p6"},
    ),
    ("event none", {"type": "event", "event": "Coupon Used", "op": "eq", "count": 0}, {"p1", "p2", "p3", "p5", "p6"}),
    (
        "event between dates",
        {"type": "event", "event": "Signed Up", "window": {"since": "2026-10-20", "until": "2026-10-27"}},
        {"p4"},
    ),
    (
        "event with a property",
        {"type": "event", "event": "Product Viewed", "where": [{"key": "sku", "op": "eq", "value": "S1"}]},
        {"p1", "p2"},
    ),
    (
        "event with a number property",
        {"type": "event", "event": "Product Viewed", "where": [{"key": "price", "op": "gte", "value": 100}]},
        {"p1"},
    ),
    (
        "event with all property tests",
        {
            "type": "event",
            "event": "Product Viewed",
            "count": 2,
            "where": [{"key": "sku", "op": "in", "value": ["S1", "S2"]}, {"key": "价格", "op": "exists"}],
        },
        {"p1"},
    ),
    (
        "event property ne needs the property",
        {"type": "event", "event": "Coupon Used", "where": [{"key": "coupon", "op": "contains", "value": "满199"}]},
        {"p4"},
    ),
    (
        "event property number eq",
        {"type": "event", "event": "Coupon Used", "where": [{"key": "value_fen", "op": "eq", "value": 2000}]},
        {"p4"},
    ),
    ("reachable by sms", {"type": "reachable", "channel": "sms"}, {"p1", "p2"}),
    ("reachable for ads", {"type": "reachable", "channel": "ads", "purpose": "audience_upload"}, {"p1"}),
    ("community group", {"type": "community_group", "groups": ["g_vip"]}, {"p2", "p3"}),
    ("in segment", {"type": "segment", "segment_id": "sg_a"}, {"p1", "p4"}),
    ("bucket", {"type": "bucket", "seed": "holdout", "from": 0, "to": 5000}, bucketed("holdout", 0, 5000)),
    (
        "bucket and its complement",
        {
            "type": "or",
            "conditions": [
                {"type": "bucket", "seed": "ab", "from": 0, "to": 3000},
                {"type": "bucket", "seed": "ab", "from": 3000, "to": 10000},
            ],
        },
        set(PEOPLE),
    ),
    ("orders count", {"type": "orders", "measure": "count", "value": 2}, {"p1"}),
    ("orders count in 30 days", {"type": "orders", "value": 1, "window": {"days": 30}}, {"p1", "p2"}),
    ("orders total", {"type": "orders", "measure": "total_fen", "op": "gt", "value": 50_000}, {"p2"}),
    (
        "orders none in a year",
        {"type": "orders", "op": "eq", "value": 0, "window": {"days": 365}},
        {"p3", "p4", "p5", "p6"},
    ),
    ("orders average", {"type": "orders", "measure": "average_fen", "op": "lt", "value": 20_000}, {"p1", "p3"}),
    (
        "orders average in 30 days",
        {"type": "orders", "measure": "average_fen", "op": "lte", "value": 20_000, "window": {"days": 30}},
        {"p1"},
    ),
    (
        "orders total in 30 days on a platform",
        {"type": "orders", "measure": "total_fen", "value": 30_000, "window": {"days": 30}, "platform": "jd"},
        {"p1"},
    ),
    ("orders on a platform", {"type": "orders", "value": 2, "platform": "tmall"}, {"p1"}),
    ("orders in a store", {"type": "orders", "value": 1, "store": "京东店"}, {"p1"}),
    ("bought category", {"type": "bought", "field": "category", "values": ["彩妆"]}, {"p1"}),
    (
        "bought brand in window",
        {"type": "bought", "field": "brand", "values": ["雪域"], "window": {"days": 30}},
        {"p1", "p2"},
    ),
    (
        "and",
        {
            "type": "and",
            "conditions": [
                trait("city", "string", "contains", "上海"),
                {"type": "rfm_score", "score": "m", "op": "gte", "value": 5},
            ],
        },
        {"p1"},
    ),
    (
        "or",
        {"type": "or", "conditions": [{"type": "tag", "tag_id": "tg_a"}, {"type": "lifecycle", "stages": ["new"]}]},
        {"p1", "p2", "p4"},
    ),
    ("not", {"type": "not", "condition": {"type": "tag", "tag_id": "tg_a"}}, {"p3", "p4", "p5", "p6"}),
    (
        "and with not",
        {
            "type": "and",
            "conditions": [
                {"type": "tag", "tag_id": "tg_a"},
                {"type": "not", "condition": trait("vip", "boolean", "is_true")},
            ],
        },
        {"p2"},
    ),
    (
        "and of nots only",
        {
            "type": "and",
            "conditions": [
                {"type": "not", "condition": {"type": "tag", "tag_id": "tg_a"}},
                {"type": "not", "condition": {"type": "lifecycle", "stages": ["new"]}},
            ],
        },
        {"p3", "p5", "p6"},
    ),
]


@pytest.mark.parametrize(("rule", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_selects_the_people_worked_out_by_hand(
    duck: RuleInputs, rule: dict[str, Any], expected: set[str]
) -> None:
    assert select(rule, duck) == expected


def test_one_person_at_a_time_agrees_with_everyone_at_once(duck: RuleInputs) -> None:
    for _, rule, expected in CASES:
        one_by_one = {p for p in PEOPLE if select(rule, restricted(duck, [p])) == {p}}
        assert one_by_one == expected, rule


def test_recent_order_aggregates_worked_out_ahead_select_the_same_people(duck: RuleInputs) -> None:
    """A run totals the rules' order aggregates over the last so many days in its one grouping of
    the purchases (``purchase_totals``); read from there, they select the same people, alone and
    one person at a time, without reading the purchases again."""
    moment = Moment(AS_OF)
    assert duck.purchases is not None
    checked = 0
    for name, rule, expected in CASES:
        node = parse_rule(rule)
        tallies = recent_purchase_tallies([node], moment)
        if not tallies:
            continue
        ahead = replace(duck, tallies=purchase_totals(duck.purchases, AS_OF, [], tallies))
        if all(tally_column(leaf) in tallies for _p, leaf in walk(node) if isinstance(leaf, Orders)):
            ahead = replace(ahead, purchases=None)  # a leaf still reading them would fail
            checked += 1
        assert select(rule, ahead) == expected, name
        assert {p for p in PEOPLE if select(rule, restricted(ahead, [p])) == {p}} == expected, name
    assert checked >= 4


def test_only_order_aggregates_over_recent_days_are_worked_out_ahead() -> None:
    """Those over all time, or dates given, may count purchases after the moment, which the
    totals leave out; each tally is named by its leaf, so two rules asking alike share one."""
    recent = {"type": "orders", "value": 1, "window": {"days": 30}}
    rules = [
        parse_rule({"type": "and", "conditions": [recent, {"type": "orders", "value": 2}]}),
        parse_rule({"type": "orders", "value": 1, "window": {"since": "2026-01-01"}}),
        parse_rule({"type": "not", "condition": recent}),
    ]
    tallies = recent_purchase_tallies(rules, Moment(AS_OF))
    assert list(tallies) == [tally_column(parse_rule(recent))]


def _all_results(inputs: RuleInputs) -> list[set[str]]:
    return [select(rule, inputs) for _, rule, _ in CASES]


# One case of each kind of node and operator family: Spark spends most of a second on any query.
SPARK_CASES = [
    c
    for c in CASES
    if c[0]
    in {
        "string ne asks for the trait",
        "not_exists",
        "number between",
        "date within_last_days",
        "date between days",
        "boolean true",
        "list excludes",
        "rfm score",
        "has tag value",
        "event at most once includes never",
        "orders average",
        "bought brand in window",
        "and with not",
        "or",
        "event with all property tests",
        "reachable by sms",
        "bucket",
    }
]


def test_postgres_gives_duckdbs_results(postgres: Any) -> None:
    expected = [c[2] for c in CASES]
    assert _all_results(inputs_on(postgres, world(), f"r{uuid.uuid4().hex[:8]}_")) == expected


def test_spark_gives_duckdbs_results(spark: Any) -> None:
    tables = {}
    for name, table in world().items():
        view = f"rules_{name}_{uuid.uuid4().hex[:8]}"
        spark._session.createDataFrame(table.to_pandas()).createOrReplaceTempView(view)
        tables[name] = spark.table(view)
    inputs = RuleInputs(**tables)
    assert [select(rule, inputs) for _, rule, _ in SPARK_CASES] == [c[2] for c in SPARK_CASES]


@pytest.mark.parametrize(
    ("rule", "path", "fragment"),
    [
        ({"type": "and", "conditions": []}, "conditions", "at least 1"),
        ({"type": "or", "conditions": [{"type": "lifecycle", "stages": []}]}, "conditions.0.stages", "at least 1"),
        ({"type": "trait", "key": "age", "value_type": "number", "op": "contains", "value": 1}, "", "does not apply"),
        ({"type": "trait", "key": "age", "value_type": "number", "op": "gt", "value": "30"}, "", "with a number"),
        (
            {"type": "trait", "key": "d", "value_type": "date", "op": "before", "value": "last tuesday"},
            "",
            "not a date",
        ),
        ({"type": "trait", "key": "c", "value_type": "string", "op": "exists", "value": "x"}, "", "takes no value"),
        ({"type": "rfm_score", "score": "r", "op": "gte", "value": 6}, "value", "less than or equal to 5"),
        ({"type": "event", "event": "X", "window": {}}, "window", "give days"),
        ({"type": "event", "event": "X", "window": {"days": 3, "since": "2026-01-01"}}, "window", "not both"),
        ({"type": "not", "condition": {"type": "everyone"}}, "condition", "does not match"),
        ({"type": "tag", "tag_id": "tg_a", "extra": 1}, "extra", "Extra inputs"),
        ({"conditions": []}, "", "discriminator"),
        (
            {"type": "event", "event": "X", "where": [{"key": "price", "op": "gt", "value": "100"}]},
            "where.0",
            "with a number",
        ),
        ({"type": "event", "event": "X", "where": [{"key": "a.b", "op": "exists"}]}, "where.0.key", "pattern"),
        ({"type": "event", "event": "X", "where": [{"key": "a", "op": "like", "value": "x"}]}, "where.0", "not a"),
        ({"type": "reachable", "channel": "ads"}, "", "audience upload"),
        ({"type": "reachable", "channel": "fax"}, "channel", "Input should be"),
        ({"type": "bucket", "seed": "x", "from": 50, "to": 50}, "", "below"),
        ({"type": "bucket", "seed": "x", "from": 0, "to": 10001}, "to", "less than or equal"),
    ],
)
def test_malformed_rules_are_refused_with_the_place(rule: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        parse_rule(rule)
    problem = caught.value.details["problems"][0]
    assert problem["path"] == path
    assert fragment in problem["message"]


def test_deep_nesting_is_refused() -> None:
    rule: dict[str, Any] = {"type": "lifecycle", "stages": ["new"]}
    for _ in range(7):
        rule = {"type": "not", "condition": rule}
    with pytest.raises(ValidationFailedError, match="levels deep"):
        parse_rule(rule)


CATALOG = Catalog(
    traits={"city": frozenset({"string"}), "birthday": frozenset({"date", "string"})},
    events=frozenset({"Signed Up"}),
    tags={"tg_a": TagRef("tg_a", "高潜", "manual")},
    rfm_groups=frozenset({"important_value"}),
    stages=frozenset({"new", "loyal"}),
    groups=frozenset({"g_vip"}),
    segments={"sg_a": "高价值"},
)


@pytest.mark.parametrize(
    ("rule", "path", "fragment"),
    [
        (trait("town", "string", "eq", "x"), "", "no profile has the trait 'town'"),
        (trait("city", "number", "gt", 3), "", "holds string values, not number"),
        (
            {
                "type": "and",
                "conditions": [{"type": "event", "event": "Signed Up"}, {"type": "event", "event": "Sined Up"}],
            },
            "conditions.1",
            "Sined Up",
        ),
        (
            {"type": "or", "conditions": [{"type": "not", "condition": {"type": "tag", "tag_id": "tg_x"}}]},
            "conditions.0.condition",
            "unknown tag",
        ),
        ({"type": "tag", "tag_id": "tg_a", "values": ["x"]}, "", "holds no values"),
        ({"type": "rfm_group", "groups": ["important_value", "vip"]}, "", "unknown RFM group 'vip'"),
        ({"type": "lifecycle", "stages": ["zombie"]}, "", "unknown lifecycle stage"),
        ({"type": "community_group", "groups": ["g_vip", "g_x"]}, "", "community group 'g_x'"),
        ({"type": "segment", "segment_id": "sg_x"}, "", "unknown segment"),
    ],
)
def test_unknown_names_are_refused_with_the_place(rule: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        check_rule(parse_rule(rule), CATALOG)
    problem = caught.value.details["problems"][0]
    assert (problem["path"], fragment in problem["message"]) == (path, True), problem


def test_known_names_pass() -> None:
    check_rule(parse_rule(trait("birthday", "date", "within_last_days", 7)), CATALOG)
    check_rule(parse_rule(trait("birthday", "string", "eq", "1995-03-02")), CATALOG)


def test_buckets_in_bulk_equal_one_at_a_time() -> None:
    con = ibis.duckdb.connect()
    ids = [f"pf_{i:05d}" for i in range(2000)]
    rows = con.raw_sql(
        f"SELECT profile_id, {bucket_sql('seed', 'profile_id')} FROM "
        "(SELECT unnest($1) AS profile_id, 'holdout' AS seed)",
        parameters=[ids],
    ).fetchall()
    assert dict(rows) == {p: bucket_of("holdout", p) for p in ids}
    share = sum(1 for p in ids if bucket_of("holdout", p) < 1000) / len(ids)
    assert 0.08 < share < 0.12  # 10 % of people, give or take


def test_rules_asking_about_rules_are_ordered_and_never_circular() -> None:
    graph = {"a": {"b", "manual"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}
    order = evaluation_order(graph)
    assert order == ["c", "b", "a", "d"] and "manual" not in order
    assert depends_on_itself("c", {"a"}, graph)  # c asking about a reaches c through b
    assert not depends_on_itself("d", {"a"}, {k: v for k, v in graph.items() if k != "d"})
