"""A rule's people before it is saved: how many, of how many, and a few of them — for the
segment builder's live count. The rule is checked as on save, then compiled over the batch
engine's snapshots (as of the last transfer) with the RFM and lifecycle results the store holds,
and the tags and segment memberships people have now (only those the rule asks about)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa

from siyu.analytics.rule_inputs import kept_results, snapshot_inputs, with_buckets
from siyu.analytics.snapshots import changed_through, snapshot_path
from siyu.core.errors import ConflictError
from siyu.rules.buckets import seeds_used
from siyu.rules.catalog import Catalog, check_rule, segments_used, tags_used
from siyu.rules.compiler import Moment, compile_rule
from siyu.rules.nodes import parse_rule
from siyu.segments.facade import held_members
from siyu.tags.facade import held_tags

SAMPLE = 20


@dataclass(frozen=True)
class RulePreview:
    people: int  # the rule selects
    everyone: int  # of the workspace's people
    sample: list[str]  # a few of them (profile ids), newest first
    as_of: datetime | None  # the snapshots' moment
    ms: int


def preview_rule(
    scoped: Any, data_dir: Path, workspace_id: str, rule: dict[str, Any], catalog: Catalog, timezone: str, now: datetime
) -> RulePreview:
    started = time.perf_counter()
    node = parse_rule(rule)
    check_rule(node, catalog)
    as_of = changed_through(snapshot_path(data_dir, workspace_id, "identities"))
    if as_of is None:
        raise ConflictError("there is nothing to count yet: run the batch once (分析 → 立即运行)")
    tags = held_tags(scoped, sorted(tags_used(node)))
    members = held_members(scoped, sorted(segments_used(node)))
    con = ibis.duckdb.connect()
    try:
        rfm, stages = kept_results(con, data_dir, workspace_id)
        inputs = snapshot_inputs(con, data_dir, workspace_id)
        inputs = replace(
            inputs,
            rfm=rfm,
            lifecycle=stages,
            tags=con.create_table("preview_tags", _cast(tags), temp=True),
            segments=con.create_table("preview_segments", _cast(members), temp=True),
        )
        inputs = with_buckets(con, inputs, seeds_used(node))
        chosen = con.create_table("chosen", compile_rule(node, inputs, Moment(now, timezone)), temp=True)
        people = int(chosen.count().to_pyarrow().as_py())
        everyone = int(inputs.people.count().to_pyarrow().as_py())
        sample = chosen.order_by(chosen.profile_id.desc()).limit(SAMPLE).to_pyarrow().column("profile_id").to_pylist()
    finally:
        con.disconnect()
    return RulePreview(people, everyone, sample, as_of, int((time.perf_counter() - started) * 1000))


def _cast(table: pa.Table) -> pa.Table:
    """Strings throughout (an empty read carries the store's types, which are strings anyway)."""
    return table.cast(pa.schema([pa.field(f.name, pa.string()) for f in table.schema]))
