"""Segments on generated people: 50 segments of mixed node types refreshed as a batch run does,
against the same segments written by hand as DuckDB SQL, in one run, with per-segment checksums
that must agree; and the builder's live preview (checked, compiled and counted from the
snapshots, as the API does it) for a set of rules.

    python bench/segments.py [--people 10000000] [--repeat 3] [--preview-repeat 7] [--dir DIR]

The data has the batch engine's snapshot layout (``analytics/<workspace>/*.parquet`` and the
kept RFM and lifecycle results): one phone per person, a third with an openid too; four traits
each (city, age, vip, member_since); about 1.5 orders, one item each; about 2 events, some with
properties, some group calls; consents (SMS marketing, audience upload, some withdrawn); five
tags. Segments: traits of each type, RFM groups and scores, stages, tags, events with counts,
windows and property tests, order counts and totals in windows, categories bought,
reachability, community groups, random buckets, and/or/not combinations, and segments of
segments. Each line prints the median of ``--repeat`` runs (the first run draws everyone's buckets,
which later runs find kept; its time is printed too).
"""

# ruff: noqa: E501 - each segment keeps its rule and its hand-written SQL on one line, side by side
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siyu.analytics.preview import preview_rule
from siyu.analytics.rule_inputs import READ_IN_PLACE, Asked, coded_snapshot_inputs, kept_by_code, kept_results
from siyu.analytics.runs import segment_changes
from siyu.analytics.snapshots import (
    CHANNELS,
    CONSENTS,
    KINDS,
    LATEST_KEY,
    MARK_KEY,
    NUMBERING_KEY,
    PLATFORMS,
    PURPOSES,
    STATUSES,
    latest_mark,
    places_in,
)
from siyu.rules.buckets import bucket_sql
from siyu.rules.catalog import Catalog
from siyu.rules.compiler import Moment
from siyu.rules.nodes import parse_rule
from siyu.segments.contracts import SegmentSpec

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
NOW = AS_OF.replace(tzinfo=None)
WORKSPACE = "ws_bench"
NUMBERING = "bench"  # the people's numbering, as a transfer names it
DAY_US = 86_400 * 1_000_000
CITIES = ["上海", "北京", "杭州", "深圳", "广州", "成都", "南京", "武汉"]
GROUPS = ["important_value", "important_develop", "important_keep", "important_retain"]
GROUPS += ["general_value", "general_develop", "general_keep", "general_retain"]
STAGES = ["prospect", "new", "active", "loyal", "dormant", "lost"]
CATEGORIES = ["护肤", "彩妆", "香水", "个护", "母婴", "食品", "家居", "服饰", "数码", "宠物"]
EVENTS = ["Product Viewed", "Page Viewed", "Coupon Used", "Product Added"]
TAGS = [f"tg_{n}" for n in range(5)]
COMMUNITY = [f"群{n:02d}" for n in range(20)]


# Data ---------------------------------------------------------------------------------------


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def _ts(us: np.ndarray) -> pa.Array:
    return pa.array(us, pa.timestamp("us"))


def generate(data_dir: Path, people: int, seed: int) -> None:
    """The snapshots of a workspace of ``people`` people, as the batch engine keeps them."""
    rng = np.random.default_rng(seed)
    folder = data_dir / "analytics" / WORKSPACE
    (folder / "results").mkdir(parents=True, exist_ok=True)
    end = int(AS_OF.timestamp() * 1_000_000)
    everyone = np.arange(people)
    with_openid = np.flatnonzero(rng.random(people) < 0.33)
    owner = np.concatenate([everyone, with_openid])
    kind = pa.array(np.where(np.arange(owner.size) < people, "phone", "openid"))
    identities = pa.table(
        {
            "id": _ids("idn_", np.arange(owner.size)),
            "profile_id": _ids("pf_", owner),
            "kind": kind,
            "weak": pa.array(np.zeros(owner.size, dtype=bool)),
            "shared": pa.array(np.zeros(owner.size, dtype=bool)),
            "code": pa.array(np.arange(owner.size, dtype=np.int32)),
            "profile_code": pa.array(owner.astype(np.int32)),
            "kind_code": places_in(kind, KINDS),
        }
    )
    # Marked as the transfer marks its files: what the preview reads the data's moment from, and
    # which numbering of the people the codes are (the kept results carry codes of it too).
    marks = {MARK_KEY: AS_OF.isoformat().encode(), NUMBERING_KEY: NUMBERING.encode()}
    pq.write_table(identities.replace_schema_metadata(marks), folder / "identities.parquet")
    _traits(folder, rng, people, end)
    _orders(folder, rng, people, end)
    _events(folder, rng, people, end)
    _consents(folder, rng, people, end)
    buyers = np.flatnonzero(rng.random(people) < 0.6)
    scores = rng.integers(1, 6, (3, buyers.size))
    pq.write_table(
        pa.table(
            {
                "profile_id": _ids("pf_", buyers),
                "r_score": pa.array(scores[0]),
                "f_score": pa.array(scores[1]),
                "m_score": pa.array(scores[2]),
                "rfm_group": pa.array(np.array(GROUPS)[rng.integers(0, 8, buyers.size)]),
                "profile_code": pa.array(buyers.astype(np.int32)),
            }
        ).replace_schema_metadata({NUMBERING_KEY: NUMBERING.encode()}),
        folder / "results" / "rfm.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "profile_id": _ids("pf_", everyone),
                "stage": pa.array(np.array(STAGES)[rng.integers(0, 6, people)]),
                "profile_code": pa.array(everyone.astype(np.int32)),
            }
        ).replace_schema_metadata({NUMBERING_KEY: NUMBERING.encode()}),
        folder / "results" / "lifecycle.parquet",
    )
    holders = [np.flatnonzero(rng.random(people) < 0.1) for _ in TAGS]
    pq.write_table(
        pa.table(
            {
                "profile_id": _ids("pf_", np.concatenate(holders)),
                "tag_id": pa.array(np.repeat(TAGS, [h.size for h in holders])),
                "value": pa.array([""] * sum(h.size for h in holders)),
            }
        ),
        folder / "tags.parquet",
    )


def _traits(folder: Path, rng: np.random.Generator, people: int, end: int) -> None:
    ids = _ids("pf_", np.arange(people))
    aged = rng.random(people) < 0.9
    n = people
    rows = [
        ("city", "s", pa.array(np.array(CITIES)[rng.integers(0, 8, n)]), None, None, None, np.ones(n, bool)),
        ("age", "n", None, pa.array(rng.integers(18, 70, n).astype(float)), None, None, aged),
        ("vip", "b", None, None, None, pa.array(rng.random(n) < 0.2), np.ones(n, bool)),
        ("member_since", "d", None, None, _ts(end - rng.integers(0, 1000 * DAY_US, n)), None, np.ones(n, bool)),
    ]
    tables = []  # each key's rows together, as the snapshot keeps them
    for key, kind, text, number, at, flag, keep in rows:
        mask = pa.array(keep)
        tables.append(
            pa.table(
                {
                    "profile_id": ids,
                    "key": pa.array([key] * n),
                    "kind": pa.array([kind] * n),
                    "text": text if text is not None else pa.nulls(n, pa.string()),
                    "number": number if number is not None else pa.nulls(n, pa.float64()),
                    "time": at if at is not None else pa.nulls(n, pa.timestamp("us")),
                    "flag": flag if flag is not None else pa.nulls(n, pa.bool_()),
                    "profile_code": pa.array(np.arange(n, dtype=np.int32)),
                }
            ).filter(mask)
        )
    pq.write_table(pa.concat_tables(tables), folder / "traits.parquet")


def _orders(folder: Path, rng: np.random.Generator, people: int, end: int) -> None:
    n = int(people * 1.5)
    # Each buyer's orders together, as the snapshot keeps them.
    buyer = np.sort(np.minimum((rng.pareto(1.2, n) * people / 8).astype(np.int64), people - 1))
    at = end - rng.integers(0, 3 * 365 * DAY_US, n)
    amount = np.maximum(rng.lognormal(9.5, 1.0, n).astype(np.int64), 100)
    fate = rng.random(n)
    ts = pa.timestamp("us")
    nulls = pa.nulls(n, ts)
    paid = fate >= 0.04
    order_ids = _ids("ord_", np.arange(n))
    platform = pa.array(np.array(["tmall", "jd", "douyin"])[rng.integers(0, 3, n)])
    pq.write_table(
        pa.table(
            {
                "id": order_ids,
                "platform": platform,
                "store": pa.array(np.full(n, "旗舰店")),
                "buyer_identity_id": _ids("idn_", buyer),
                "status": pa.array(np.where(paid, "completed", "cancelled")),
                "total_fen": pa.array(amount),
                "paid_fen": pa.array(np.where(paid, amount, 0)),
                "ordered_at": _ts(at),
                "paid_at": pc.if_else(pa.array(paid), _ts(at + 60_000_000), nulls),
                "completed_at": nulls,
                "refunded_at": nulls,
                "cancelled_at": pc.if_else(pa.array(~paid), _ts(at), nulls),
                "code": pa.array(np.arange(n, dtype=np.int32)),
                "platform_code": places_in(platform, PLATFORMS),
                "buyer_code": pa.array(buyer.astype(np.int32)),
            }
        ),
        folder / "orders.parquet",
    )
    skus = rng.integers(0, 200, n)
    pq.write_table(
        pa.table(
            {
                "id": _ids("oi_", np.arange(n)),
                "order_id": order_ids,
                "sku": _ids("SKU", skus),
                "quantity": pa.array(np.ones(n, np.int64)),
                "unit_price_fen": pa.array(amount),
                "amount_fen": pa.array(amount),
                "order_code": pa.array(np.arange(n, dtype=np.int32)),
            }
        ),
        folder / "order_items.parquet",
    )
    catalog = np.arange(200)
    pq.write_table(
        pa.table(
            {
                "sku": _ids("SKU", catalog),
                "name": _ids("商品", catalog),
                "category": pa.array(np.array(CATEGORIES)[catalog % 10]),
                "brand": _ids("品牌", catalog % 8),
                "price_fen": pa.array(np.full(200, 9900)),
            }
        ),
        folder / "products.parquet",
    )


def _events(folder: Path, rng: np.random.Generator, people: int, end: int) -> None:
    n = people * 2
    who = rng.integers(0, people, n)
    name = np.array(EVENTS)[rng.integers(0, 4, n)]
    sku = _ids("SKU", rng.integers(0, 200, n))
    price = pc.cast(pa.array(rng.integers(10, 1000, n)), pa.string())
    viewed = pc.binary_join_element_wise('{"sku": "', sku, '", "price": ', price, "}", "")
    page = pc.binary_join_element_wise(
        '{"path": "/p/', pc.cast(pa.array(rng.integers(0, 50, n)), pa.string()), '"}', ""
    )
    props = pc.if_else(
        pa.array(name == "Product Viewed"), viewed, pc.if_else(pa.array(name == "Page Viewed"), page, "{}")
    )
    g = max(1, people // 20)
    group_who = rng.integers(0, people, g)
    pq.write_table(  # each event's rows together, as the snapshot keeps them
        pa.concat_tables(
            [
                pa.table(
                    {
                        "id": _ids("evt_", np.arange(n)),
                        "identity_id": _ids("idn_", who),
                        "type": pa.array(["track"] * n),
                        "event": pa.array(name),
                        "timestamp": _ts(end - rng.integers(0, 365 * DAY_US, n)),
                        "properties": props,
                        "group_id": pa.nulls(n, pa.string()),
                        "identity_code": pa.array(who.astype(np.int32)),
                    }
                ),
                pa.table(
                    {
                        "id": _ids("evg_", np.arange(g)),
                        "identity_id": _ids("idn_", group_who),
                        "type": pa.array(["group"] * g),
                        "event": pa.nulls(g, pa.string()),
                        "timestamp": _ts(end - rng.integers(0, 365 * DAY_US, g)),
                        "properties": pa.array(["{}"] * g),
                        "group_id": pa.array(np.array(COMMUNITY)[rng.integers(0, 20, g)]),
                        "identity_code": pa.array(group_who.astype(np.int32)),
                    }
                ),
            ]
        ).sort_by([("event", "ascending")]),
        folder / "events.parquet",
    )


def _consents(folder: Path, rng: np.random.Generator, people: int, end: int) -> None:
    """Each identifier's latest record per channel and purpose, as the snapshot keeps them: SMS
    marketing granted (some of them withdrawn since) and audience upload granted."""
    sms = np.flatnonzero(rng.random(people) < 0.6)
    ads = np.flatnonzero(rng.random(people) < 0.3)
    gone = rng.random(sms.size) < 0.08
    granted, withdrawn = sms[~gone], sms[gone]
    who = np.concatenate([granted, ads, withdrawn])
    sizes = [granted.size, ads.size, withdrawn.size]
    channel = np.repeat(["sms", "ads", "sms"], sizes)
    purpose = np.repeat(["marketing", "audience_upload", "marketing"], sizes)
    status = np.repeat(["granted", "granted", "withdrawn"], sizes)
    at = np.concatenate(
        [np.full(granted.size + ads.size, end - 300 * DAY_US), np.full(withdrawn.size, end - 10 * DAY_US)]
    )
    pq.write_table(
        pa.table(
            {
                "id": _ids("cns_", np.arange(who.size)),
                "identity_id": _ids("idn_", who),
                "channel": pa.array(channel),
                "purpose": pa.array(purpose),
                "status": pa.array(status),
                "at": _ts(at),
                "channel_code": places_in(pa.array(channel), CHANNELS),
                "purpose_code": places_in(pa.array(purpose), PURPOSES),
                "status_code": places_in(pa.array(status), STATUSES),
                "identity_code": pa.array(who.astype(np.int32)),
            }
        ).replace_schema_metadata({LATEST_KEY: latest_mark(CONSENTS)}),
        folder / "consents.parquet",
    )


# The segments, each as a rule and as hand-written SQL ------------------------------------


def _days_ago(days: int) -> str:
    return f"TIMESTAMP '{(NOW - timedelta(days=days)).isoformat(sep=' ')}'"


def _list(values: list[str]) -> str:
    return "(" + ", ".join("'" + v + "'" for v in values) + ")"


def segments() -> list[tuple[str, dict[str, Any], str]]:
    """(name, rule, SQL selecting the same profile_ids) for each of the 50 segments. The SQL reads
    the views ``hand_views`` makes; ``seg_<name>`` is an earlier segment's members."""
    out: list[tuple[str, dict[str, Any], str]] = []

    def add(name: str, rule: dict[str, Any], sql: str) -> None:
        out.append((name, rule, sql))

    def trait(key: str, value_type: str, op: str, value: Any = None) -> dict[str, Any]:
        node = {"type": "trait", "key": key, "value_type": value_type, "op": op}
        return node | ({"value": value} if value is not None else {})

    for city in CITIES[:2]:
        add(
            f"city_{city}",
            trait("city", "string", "eq", city),
            f"SELECT profile_id FROM traits WHERE key = 'city' AND kind <> 'l' AND text = '{city}'",
        )
    add(
        "age_25_35",
        trait("age", "number", "between", [25, 35]),
        "SELECT profile_id FROM traits WHERE key = 'age' AND number BETWEEN 25 AND 35",
    )
    add("vip", trait("vip", "boolean", "is_true"), "SELECT profile_id FROM traits WHERE key = 'vip' AND flag")
    add(
        "new_members",
        trait("member_since", "date", "within_last_days", 90),
        f"SELECT profile_id FROM traits WHERE key = 'member_since' AND time >= {_days_ago(90)} AND time <= TIMESTAMP '{NOW.isoformat(sep=' ')}'",
    )
    add(
        "no_age",
        trait("age", "number", "not_exists"),
        "SELECT profile_id FROM people EXCEPT SELECT profile_id FROM traits WHERE key = 'age'",
    )
    for i, groups in enumerate([GROUPS[:2], GROUPS[2:4], GROUPS[4:6], GROUPS[6:]]):
        add(
            f"rfm_{i}",
            {"type": "rfm_group", "groups": groups},
            f"SELECT profile_id FROM rfm WHERE rfm_group IN {_list(groups)}",
        )
    add(
        "m_high",
        {"type": "rfm_score", "score": "m", "op": "gte", "value": 4},
        "SELECT profile_id FROM rfm WHERE m_score >= 4",
    )
    add(
        "r_low",
        {"type": "rfm_score", "score": "r", "op": "lte", "value": 2},
        "SELECT profile_id FROM rfm WHERE r_score <= 2",
    )
    for stages in (["new"], ["active", "loyal"], ["dormant"], ["lost"]):
        add(
            f"stage_{'_'.join(stages)}",
            {"type": "lifecycle", "stages": stages},
            f"SELECT profile_id FROM stages WHERE stage IN {_list(stages)}",
        )
    for tag in TAGS:
        add(f"has_{tag}", {"type": "tag", "tag_id": tag}, f"SELECT profile_id FROM tags WHERE tag_id = '{tag}'")
    add(
        "viewed_30d",
        {"type": "event", "event": "Product Viewed", "window": {"days": 30}},
        f"SELECT profile_id FROM events WHERE event = 'Product Viewed' AND timestamp >= {_days_ago(30)} AND timestamp <= TIMESTAMP '{NOW.isoformat(sep=' ')}'",
    )
    add(
        "viewed_twice",
        {"type": "event", "event": "Product Viewed", "count": 2},
        "SELECT profile_id FROM events WHERE event = 'Product Viewed' GROUP BY profile_id HAVING count(*) >= 2",
    )
    add(
        "no_coupon",
        {"type": "event", "event": "Coupon Used", "op": "eq", "count": 0},
        "SELECT profile_id FROM people EXCEPT SELECT profile_id FROM events WHERE event = 'Coupon Used'",
    )
    add(
        "viewed_sku7",
        {"type": "event", "event": "Product Viewed", "where": [{"key": "sku", "op": "eq", "value": "SKU7"}]},
        "SELECT profile_id FROM events WHERE event = 'Product Viewed' AND json_extract_string(properties, '$.sku') = 'SKU7'",
    )
    add(
        "viewed_pricey",
        {"type": "event", "event": "Product Viewed", "where": [{"key": "price", "op": "gte", "value": 900}]},
        "SELECT profile_id FROM events WHERE event = 'Product Viewed' AND TRY_CAST(json_extract_string(properties, '$.price') AS DOUBLE) >= 900",
    )
    add(
        "orders_2_90d",
        {"type": "orders", "value": 2, "window": {"days": 90}},
        f"SELECT profile_id FROM purchases WHERE bought_at >= {_days_ago(90)} AND bought_at <= TIMESTAMP '{NOW.isoformat(sep=' ')}' GROUP BY profile_id HAVING count(*) >= 2",
    )
    add("orders_ever", {"type": "orders", "value": 1}, "SELECT profile_id FROM purchases")
    add(
        "spent_1000_365d",
        {"type": "orders", "measure": "total_fen", "value": 100_000, "window": {"days": 365}},
        f"SELECT profile_id FROM purchases WHERE bought_at >= {_days_ago(365)} AND bought_at <= TIMESTAMP '{NOW.isoformat(sep=' ')}' GROUP BY profile_id HAVING sum(amount_fen) >= 100000",
    )
    add(
        "avg_over_300",
        {"type": "orders", "measure": "average_fen", "op": "gt", "value": 30_000},
        "SELECT profile_id FROM purchases GROUP BY profile_id HAVING avg(amount_fen) > 30000",
    )
    add(
        "jd_buyers",
        {"type": "orders", "value": 1, "platform": "jd"},
        "SELECT profile_id FROM purchases WHERE platform = 'jd'",
    )
    for cat in CATEGORIES[:3]:
        add(
            f"bought_{cat}",
            {"type": "bought", "field": "category", "values": [cat], "window": {"days": 180}},
            f"SELECT profile_id FROM items WHERE category = '{cat}' AND bought_at >= {_days_ago(180)} AND bought_at <= TIMESTAMP '{NOW.isoformat(sep=' ')}'",
        )
    add(
        "sms_reachable",
        {"type": "reachable", "channel": "sms"},
        "SELECT profile_id FROM reach WHERE channel = 'sms' AND purpose = 'marketing'",
    )
    add(
        "ads_reachable",
        {"type": "reachable", "channel": "ads", "purpose": "audience_upload"},
        "SELECT profile_id FROM reach WHERE channel = 'ads' AND purpose = 'audience_upload'",
    )
    add(
        "in_groups",
        {"type": "community_group", "groups": COMMUNITY[:5]},
        f"SELECT profile_id FROM groups WHERE group_id IN {_list(COMMUNITY[:5])}",
    )
    add(
        "ab_10pct",
        {"type": "bucket", "seed": "ab", "from": 0, "to": 1000},
        "SELECT profile_id FROM buckets WHERE seed = 'ab' AND bucket < 1000",
    )
    add(
        "ab_rest",
        {"type": "bucket", "seed": "ab", "from": 1000, "to": 10000},
        "SELECT profile_id FROM buckets WHERE seed = 'ab' AND bucket >= 1000",
    )
    shanghai = trait("city", "string", "eq", "上海")
    add(
        "sh_vip_sms",
        {
            "type": "and",
            "conditions": [shanghai, trait("vip", "boolean", "is_true"), {"type": "reachable", "channel": "sms"}],
        },
        "(SELECT profile_id FROM traits WHERE key = 'city' AND kind <> 'l' AND text = '上海') INTERSECT (SELECT profile_id FROM traits WHERE key = 'vip' AND flag) INTERSECT (SELECT profile_id FROM reach WHERE channel = 'sms' AND purpose = 'marketing')",
    )
    add(
        "valuable_not_lost",
        {
            "type": "and",
            "conditions": [
                {"type": "rfm_group", "groups": GROUPS[:2]},
                {"type": "not", "condition": {"type": "lifecycle", "stages": ["lost"]}},
            ],
        },
        f"(SELECT profile_id FROM rfm WHERE rfm_group IN {_list(GROUPS[:2])}) EXCEPT (SELECT profile_id FROM stages WHERE stage = 'lost')",
    )
    add(
        "tag0_or_tag1",
        {"type": "or", "conditions": [{"type": "tag", "tag_id": "tg_0"}, {"type": "tag", "tag_id": "tg_1"}]},
        "(SELECT profile_id FROM tags WHERE tag_id = 'tg_0') UNION (SELECT profile_id FROM tags WHERE tag_id = 'tg_1')",
    )
    add(
        "winback",
        {
            "type": "and",
            "conditions": [
                {"type": "lifecycle", "stages": ["dormant"]},
                {"type": "orders", "value": 2},
                {"type": "reachable", "channel": "sms"},
            ],
        },
        "(SELECT profile_id FROM stages WHERE stage = 'dormant') INTERSECT (SELECT profile_id FROM purchases GROUP BY profile_id HAVING count(*) >= 2) INTERSECT (SELECT profile_id FROM reach WHERE channel = 'sms' AND purpose = 'marketing')",
    )
    add(
        "browsers_no_buy",
        {
            "type": "and",
            "conditions": [
                {"type": "event", "event": "Product Added", "window": {"days": 30}},
                {"type": "not", "condition": {"type": "orders", "value": 1, "window": {"days": 30}}},
            ],
        },
        f"(SELECT profile_id FROM events WHERE event = 'Product Added' AND timestamp >= {_days_ago(30)} AND timestamp <= TIMESTAMP '{NOW.isoformat(sep=' ')}') EXCEPT (SELECT profile_id FROM purchases WHERE bought_at >= {_days_ago(30)} AND bought_at <= TIMESTAMP '{NOW.isoformat(sep=' ')}')",
    )
    add(
        "young_or_new",
        {"type": "or", "conditions": [trait("age", "number", "lt", 25), {"type": "lifecycle", "stages": ["new"]}]},
        "(SELECT profile_id FROM traits WHERE key = 'age' AND number < 25) UNION (SELECT profile_id FROM stages WHERE stage = 'new')",
    )
    add(
        "nested",
        {
            "type": "and",
            "conditions": [
                {
                    "type": "or",
                    "conditions": [trait("city", "string", "in", ["北京", "上海"]), {"type": "tag", "tag_id": "tg_2"}],
                },
                {"type": "not", "condition": {"type": "rfm_score", "score": "r", "op": "lte", "value": 1}},
            ],
        },
        "((SELECT profile_id FROM traits WHERE key = 'city' AND kind <> 'l' AND text IN ('北京', '上海')) UNION (SELECT profile_id FROM tags WHERE tag_id = 'tg_2')) EXCEPT (SELECT profile_id FROM rfm WHERE r_score <= 1)",
    )
    add(
        "not_vip",
        {"type": "not", "condition": trait("vip", "boolean", "is_true")},
        "SELECT profile_id FROM people EXCEPT SELECT profile_id FROM traits WHERE key = 'vip' AND flag",
    )
    add(
        "vip_ab",
        {
            "type": "and",
            "conditions": [
                trait("vip", "boolean", "is_true"),
                {"type": "bucket", "seed": "vip-test", "from": 0, "to": 5000},
            ],
        },
        "(SELECT profile_id FROM traits WHERE key = 'vip' AND flag) INTERSECT (SELECT profile_id FROM buckets WHERE seed = 'vip-test' AND bucket < 5000)",
    )
    out_names = [n for n, _, _ in out]
    assert "sh_vip_sms" in out_names
    add(
        "of_sh_vip_sms_not_groups",
        {
            "type": "and",
            "conditions": [
                {"type": "segment", "segment_id": "sg_sh_vip_sms"},
                {"type": "not", "condition": {"type": "community_group", "groups": COMMUNITY[:5]}},
            ],
        },
        f"(SELECT profile_id FROM seg_sh_vip_sms) EXCEPT (SELECT profile_id FROM groups WHERE group_id IN {_list(COMMUNITY[:5])})",
    )
    add(
        "of_winback_or_browsers",
        {
            "type": "or",
            "conditions": [
                {"type": "segment", "segment_id": "sg_winback"},
                {"type": "segment", "segment_id": "sg_browsers_no_buy"},
            ],
        },
        "(SELECT profile_id FROM seg_winback) UNION (SELECT profile_id FROM seg_browsers_no_buy)",
    )
    assert len(out) == 50, len(out)
    return out


# siyu ---------------------------------------------------------------------------------------


Results = dict[str, pa.Array]


def run_siyu(data_dir: Path) -> Results:
    """As a batch run of scope segments: the inputs from the snapshots, then every segment."""
    con = ibis.duckdb.connect()
    held = pa.table({"profile_id": pa.array([], pa.string()), "segment_id": pa.array([], pa.string())})
    rfm, stages = kept_results(con, data_dir, WORKSPACE)
    tags = con.read_parquet(data_dir / "analytics" / WORKSPACE / "tags.parquet")
    specs = [SegmentSpec(f"sg_{name}", name, rule) for name, rule, _ in segments()]
    asked = Asked.of(parse_rule(s.rule) for s in specs)
    by_id = {"rfm": rfm, "lifecycle": stages, "tags": tags}
    by_code = kept_by_code(data_dir, WORKSPACE)  # as the full run kept them
    assert set(by_code) == {"rfm", "lifecycle"}
    codes = coded_snapshot_inputs(con, data_dir, WORKSPACE, by_id, asked, READ_IN_PLACE, by_code=by_code)
    changes = segment_changes(specs, codes, Moment(AS_OF), held)
    con.disconnect()
    return {spec.name: changes[spec.id].entered for spec in specs}


# By hand ------------------------------------------------------------------------------------


def hand_views(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    folder = data_dir / "analytics" / WORKSPACE

    def path(name: str) -> str:
        return f"read_parquet('{folder / name}.parquet')"

    con.execute(f"""
        CREATE VIEW owners AS SELECT id AS identity_id, profile_id, code FROM {path("identities")} WHERE profile_id IS NOT NULL;
        CREATE VIEW people AS SELECT DISTINCT profile_id FROM owners;
        CREATE VIEW traits AS SELECT * FROM {path("traits")};
        CREATE VIEW rfm AS SELECT * FROM {path("results/rfm")};
        CREATE VIEW stages AS SELECT * FROM {path("results/lifecycle")};
        CREATE VIEW tags AS SELECT * FROM {path("tags")};
        CREATE TEMP TABLE purchases AS
            SELECT w.profile_id, o.code AS order_code, o.paid_at AS bought_at, o.paid_fen AS amount_fen, o.platform, o.store
            FROM {path("orders")} o JOIN owners w ON o.buyer_code = w.code
            WHERE o.paid_at IS NOT NULL AND o.cancelled_at IS NULL AND o.refunded_at IS NULL;
        CREATE VIEW events AS
            SELECT w.profile_id, e.type, e.event, e.timestamp, e.properties
            FROM {path("events")} e JOIN owners w ON e.identity_code = w.code;
        CREATE VIEW groups AS
            SELECT DISTINCT w.profile_id, e.group_id
            FROM {path("events")} e JOIN owners w ON e.identity_code = w.code
            WHERE e.type = 'group' AND e.group_id IS NOT NULL;
        CREATE VIEW items AS
            SELECT p.profile_id, p.bought_at, i.sku, d.category, d.brand
            FROM {path("order_items")} i JOIN purchases p ON i.order_code = p.order_code
            LEFT JOIN {path("products")} d ON i.sku = d.sku;
        CREATE VIEW reach AS
            WITH latest AS (
                SELECT *, row_number() OVER (PARTITION BY identity_code, channel, purpose ORDER BY "at" DESC, id DESC) AS n
                FROM {path("consents")}
            )
            SELECT DISTINCT i.profile_id, l.channel, l.purpose
            FROM latest l JOIN {path("identities")} i ON l.identity_code = i.code
            WHERE l.n = 1 AND l.status = 'granted' AND i.profile_id IS NOT NULL AND NOT i.weak AND NOT i.shared
              AND (l.channel = 'ads' OR (l.channel = 'sms' AND i.kind = 'phone') OR (l.channel = 'email' AND i.kind = 'email')
                   OR (l.channel IN ('wechat_oa', 'miniprogram') AND i.kind = 'openid')
                   OR (l.channel = 'wecom' AND i.kind = 'wecom_external_userid')
                   OR (l.channel = 'app_push' AND i.kind IN ('user_id', 'anonymous_id')));
        CREATE TEMP TABLE buckets AS
            SELECT p.profile_id, s.seed, {bucket_sql("s.seed", "p.profile_id")} AS bucket
            FROM people p CROSS JOIN (SELECT unnest(['ab', 'vip-test']) AS seed) s;
    """)


def run_sql(data_dir: Path) -> Results:
    con = duckdb.connect()
    hand_views(con, data_dir)
    out: Results = {}
    for name, _, sql in segments():
        members = (
            con.sql(f"SELECT DISTINCT profile_id FROM ({sql})").arrow().read_all().column("profile_id").combine_chunks()
        )
        out[name] = members
        con.register(f"seg_{name}", pa.table({"profile_id": members}))  # for segments of segments
    con.close()
    return out


# Measuring ---------------------------------------------------------------------------------


def checksum(results: Results) -> tuple[tuple[str, int, int], ...]:
    con = duckdb.connect()
    rows = []
    for name, members in sorted(results.items()):
        con.register("m", pa.table({"profile_id": members}))
        [(n, h)] = con.sql("SELECT count(*), coalesce(sum(hash(profile_id) % 1000003), 0) FROM m").fetchall()
        rows.append((name, int(n), int(h)))
        con.unregister("m")
    con.close()
    return tuple(rows)


def timed(fn: Callable[[Path], Results], data_dir: Path, repeat: int) -> tuple[float, tuple[Any, ...], float]:
    """The median time, the checksum, and the first run's time."""
    times, sums = [], set()
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(data_dir)
        times.append(time.perf_counter() - started)
        sums.add(checksum(result))
    assert len(sums) == 1, f"{fn.__name__} gave different results on different runs"
    return statistics.median(times), sums.pop(), times[0]


PREVIEWS: dict[str, dict[str, Any]] = {
    "trait": {"type": "trait", "key": "city", "value_type": "string", "op": "eq", "value": "上海"},
    "rfm and stage": {
        "type": "and",
        "conditions": [
            {"type": "rfm_group", "groups": GROUPS[:2]},
            {"type": "lifecycle", "stages": ["active", "loyal"]},
        ],
    },
    "orders in 90 days": {"type": "orders", "value": 2, "window": {"days": 90}},
    "event with a property": {
        "type": "event",
        "event": "Product Viewed",
        "where": [{"key": "sku", "op": "eq", "value": "SKU7"}],
    },
    "reachable and not lost": {
        "type": "and",
        "conditions": [
            {"type": "reachable", "channel": "sms"},
            {"type": "not", "condition": {"type": "lifecycle", "stages": ["lost"]}},
        ],
    },
}


CATALOG = Catalog(
    traits={"city": frozenset({"string"}), "age": frozenset({"number"}), "vip": frozenset({"boolean"})},
    events=frozenset(EVENTS),
    rfm_groups=frozenset(GROUPS),
    stages=frozenset(STAGES),
    groups=frozenset(COMMUNITY),
)


def preview_once(data_dir: Path, rule: dict[str, Any]) -> int:
    """The preview endpoint's work after its reads of the store (these rules ask about no tags or
    segments): checked, compiled over the process's engine for the workspace, counted, sampled."""
    return preview_rule(None, data_dir, WORKSPACE, rule, CATALOG, "Asia/Shanghai", AS_OF).people


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--preview-repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="keep the generated snapshots here (reused if present)")
    parser.add_argument("--no-refresh", dest="refresh", action="store_false", help="only the previews")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.dir or Path(tmp)
        if not (data_dir / "analytics" / WORKSPACE / "events.parquet").exists():
            started = time.perf_counter()
            generate(data_dir, args.people, args.seed)
            print(f"generated {args.people:,} people in {time.perf_counter() - started:.1f} s")
        if args.refresh:
            print(f"50 segments over {args.people:,} people, median of {args.repeat} runs")
            # Everyone's buckets are kept between runs: the first run draws them all.
            shutil.rmtree(data_dir / "analytics" / WORKSPACE / "buckets", ignore_errors=True)
            siyu_s, siyu_sum, siyu_first = timed(run_siyu, data_dir, args.repeat)
            sql_s, sql_sum, _ = timed(run_sql, data_dir, args.repeat)
            print(
                f"siyu (rule compiler on DuckDB): {siyu_s:.2f} s; the first run, drawing every bucket: {siyu_first:.2f} s"
            )
            print(f"hand-written DuckDB SQL: {sql_s:.2f} s; siyu/SQL = {siyu_s / sql_s:.2f}x")
            assert siyu_sum == sql_sum, [(a, b) for a, b in zip(siyu_sum, sql_sum, strict=True) if a != b]
            print(
                f"checksums agree on all {len(siyu_sum)} segments; sizes: "
                + ", ".join(f"{n}={c}" for n, c, _ in siyu_sum[:6])
                + ", …"
            )
        print(f"preview over {args.people:,} people, median of {args.preview_repeat}:")
        started = time.perf_counter()
        preview_once(data_dir, {"type": "lifecycle", "stages": ["new"]})
        print(f"  the first preview after a run (the engine built): {(time.perf_counter() - started) * 1000:.0f} ms")
        for name, rule in PREVIEWS.items():
            times = []
            for n in range(args.preview_repeat + 1):
                started = time.perf_counter()
                count = preview_once(data_dir, rule)
                if n:  # the first reads its tables into the engine
                    times.append(time.perf_counter() - started)
                else:
                    first = time.perf_counter() - started
            print(f"  {name}: {statistics.median(times) * 1000:.0f} ms, first {first * 1000:.0f} ms ({count:,} people)")


if __name__ == "__main__":
    main()
