"""The tables rules read (``RuleInputs``), assembled from the workspace's snapshots in an engine:
for the batch run's tags and segments, and for previews of a rule being written.

The batch run hands in this run's RFM and lifecycle results; a preview reads the copies of the
results the store holds, kept beside the snapshots. Tags and segment memberships come from the
store. Buckets are drawn only for the seeds the rules at hand use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend

from siyu.analytics.inputs import (
    community_groups,
    people,
    person_events,
    purchased_items,
    purchases,
    reachability,
)
from siyu.analytics.snapshots import snapshot_dir, snapshot_path
from siyu.rules.buckets import bucket_sql
from siyu.rules.compiler import RuleInputs

RFM_RESULTS = "rfm.parquet"
LIFECYCLE_RESULTS = "lifecycle.parquet"
BUCKETS_TABLE = "rule_buckets"


def snapshot_inputs(con: BaseBackend, data_dir: Path, workspace_id: str, bought: ir.Table | None = None) -> RuleInputs:
    """Everything rules read that the snapshots hold: people, traits, purchases and their items,
    events, reachability, community groups. ``bought``: the purchases, if the caller has them."""

    def read(source: str) -> ir.Table:
        return con.read_parquet(snapshot_path(data_dir, workspace_id, source))

    identities, events = read("identities"), read("events")
    everyone = people(identities)
    traits = read("traits")
    # Trait rows of people merged away since are no one's.
    traits = traits.semi_join(everyone, traits.profile_id == everyone.profile_id)
    if bought is None:
        bought = purchases(read("orders"), identities)
    return RuleInputs(
        people=everyone,
        traits=traits,
        purchases=bought,
        events=person_events(events, identities),
        items=purchased_items(bought, read("order_items"), read("products")),
        reach=reachability(identities, read("consents")),
        groups=community_groups(events, identities),
    )


def kept_results(con: BaseBackend, data_dir: Path, workspace_id: str) -> tuple[ir.Table, ir.Table]:
    """The RFM and lifecycle results the store holds, from their copies (empty before any run)."""
    folder = snapshot_dir(data_dir, workspace_id) / "results"
    rfm_path, stages_path = folder / RFM_RESULTS, folder / LIFECYCLE_RESULTS
    rfm = (
        con.read_parquet(rfm_path)
        if rfm_path.exists()
        else ibis.memtable(
            pa.table(
                {
                    "profile_id": pa.array([], pa.string()),
                    "r_score": pa.array([], pa.int64()),
                    "f_score": pa.array([], pa.int64()),
                    "m_score": pa.array([], pa.int64()),
                    "rfm_group": pa.array([], pa.string()),
                }
            )
        )
    )
    stages = (
        con.read_parquet(stages_path)
        if stages_path.exists()
        else ibis.memtable(pa.table({"profile_id": pa.array([], pa.string()), "stage": pa.array([], pa.string())}))
    )
    return rfm, stages


def with_buckets(con: BaseBackend, inputs: RuleInputs, seeds: Iterable[str]) -> RuleInputs:
    """The inputs with everyone's bucket for each of ``seeds`` (DuckDB computes them)."""
    wanted = sorted(set(seeds))
    if not wanted:
        return inputs
    everyone = con.compile(inputs.people.select("profile_id"))
    seeds_sql = ", ".join("'" + s.replace("'", "''") + "'" for s in wanted)
    con.raw_sql(
        f"CREATE OR REPLACE TEMP TABLE {BUCKETS_TABLE} AS "
        f"SELECT p.profile_id, s.seed, {bucket_sql('s.seed', 'p.profile_id')} AS bucket "
        f"FROM ({everyone}) AS p CROSS JOIN (SELECT unnest([{seeds_sql}]) AS seed) AS s"
    )
    return replace(inputs, buckets=con.table(BUCKETS_TABLE))
