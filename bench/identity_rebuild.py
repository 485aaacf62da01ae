"""Identity rebuild on generated identity records, against plain scipy connected components
on the same links, scored against the generator's ground truth.

    python bench/identity_rebuild.py [--customers 400000] [--seed 1] [--repeat 3] [--no-splink]

Splink (``pip install splink``) links the same records deterministically in a separate process.

Each channel record of a synthetic person is one observation (WeChat and member records carry
the unionid / phone they were linked by). Prints records, time, peak memory, and how many
predicted people mix different true people (purity) or split one true person (fragmentation).
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from siyu.demo.generator import SyntheticBrand
from siyu.identity.rebuild import rebuild


def records(brand: SyntheticBrand) -> tuple[pa.Table, pa.Table]:
    """Observations as rows (obs, kind, scope, value) plus the truth (kind, scope, value, person)."""
    obs_tables, truth_tables, offset = [], [], 0
    for chunk in brand.chunks():
        ids = chunk.identities
        n = ids.num_rows
        obs = np.arange(offset, offset + n)
        offset += n
        kind = ids.column("kind")
        scope = pc.if_else(pc.equal(ids.column("scope"), "tmall"), "taobao", ids.column("scope"))
        phone = pc.binary_join_element_wise("+86", ids.column("value"), "")
        value = pc.if_else(pc.equal(kind, "phone"), phone, ids.column("value"))
        value = pc.if_else(pc.equal(kind, "member_no"), pc.utf8_upper(value), value)
        base = pa.table({"obs": obs, "kind": kind, "scope": scope, "value": value})
        people = chunk.people.select(["person_id", "unionid", "phone"])
        joined = pa.table({"obs": obs, "person_id": ids.column("person_id"), "kind": kind}).join(people, "person_id")
        wechat = pc.is_in(joined.column("kind"), pa.array(["openid", "wecom_external_userid"]))
        with_union = joined.filter(pc.and_(wechat, pc.is_valid(joined.column("unionid"))))
        member = joined.filter(pc.equal(joined.column("kind"), "member_no"))
        extra = [
            pa.table(
                {
                    "obs": with_union.column("obs"),
                    "kind": pa.array(["unionid"] * with_union.num_rows),
                    "scope": pa.array([""] * with_union.num_rows),
                    "value": with_union.column("unionid"),
                }
            ),
            pa.table(
                {
                    "obs": member.column("obs"),
                    "kind": pa.array(["phone"] * member.num_rows),
                    "scope": pa.array([""] * member.num_rows),
                    "value": pc.binary_join_element_wise("+86", member.column("phone"), ""),
                }
            ),
        ]
        obs_tables.append(pa.concat_tables([base.cast(extra[0].schema), *extra]))
        truth_tables.append(pa.table({"kind": kind, "scope": scope, "value": value, "person": ids.column("person_id")}))
    return pa.concat_tables(obs_tables), pa.concat_tables(truth_tables)


def splink_peer(records_path: str, out: Any) -> None:
    """Splink's deterministic linkage (DuckDB backend) on the same records: one row per
    observation with a column per identifier kind, a blocking rule per kind, then Splink's
    clustering. Runs in its own process so its time and peak memory are its own."""
    import duckdb
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"CREATE TABLE r AS SELECT * FROM read_parquet('{records_path}')")
    groups = [g for (g,) in con.execute("SELECT DISTINCT kind || '_' || scope FROM r ORDER BY 1").fetchall()]
    columns = {g: "c_" + "".join(ch if ch.isalnum() else "_" for ch in g) for g in groups}
    picks = ", ".join(f"max(value) FILTER (WHERE kind || '_' || scope = '{g}') AS {c}" for g, c in columns.items())
    con.execute(f"CREATE TABLE wide AS SELECT obs AS unique_id, {picks} FROM r GROUP BY obs")
    db_api = DuckDBAPI(connection=con)
    settings = SettingsCreator(
        link_type="dedupe_only",
        # The same linking rule as ours: equal strong identifiers; masked phones link nobody.
        blocking_rules_to_generate_predictions=[
            block_on(c) for g, c in columns.items() if not g.startswith("masked_phone")
        ],
        comparisons=[],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(db_api.register("wide"), settings, log_level=40)
    pairs = linker.inference.deterministic_link()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs).as_duckdbpyrelation()
    clusters.select("unique_id, cluster_id").write_parquet(records_path + ".splink.parquet")
    elapsed = time.perf_counter() - started
    out.put((elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def ours(records_path: str, out: Any) -> None:
    """Our rebuild in its own process: read the records, rebuild, write the people."""
    started = time.perf_counter()
    table = pq.read_table(records_path)
    loaded = time.perf_counter()
    result = rebuild(table)
    done = time.perf_counter()
    predicted = pa.table({"kind": result.kinds, "scope": result.scopes, "value": result.values, "label": result.person})
    pq.write_table(predicted, records_path + ".ours.parquet")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put((done - loaded, done - started, peak, result.shared.num_rows, len(result.conflicts)))


def in_child(target: Any, path: str) -> Any:
    context = multiprocessing.get_context("spawn")
    out = context.SimpleQueue()
    child = context.Process(target=target, args=(path, out))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed")
    return out.get()


def plain_components(table: pa.Table) -> float:
    """Peer: plain connected components over the same records (no guards, no caps)."""
    started = time.perf_counter()
    key = pc.binary_join_element_wise(table.column("kind"), table.column("scope"), table.column("value"), "|")
    enc = pc.dictionary_encode(key).combine_chunks()
    node = enc.indices.to_numpy().astype(np.int64)
    obs = table.column("obs").to_numpy()
    order = np.argsort(obs, kind="stable")
    same = obs[order][1:] == obs[order][:-1]
    src, dst = node[order][1:][same], node[order][:-1][same]
    n = len(enc.dictionary)
    connected_components(coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n)), directed=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours, each in a new process")
    parser.add_argument("--no-splink", dest="splink", action="store_false", help="skip the Splink comparison")
    args = parser.parse_args()
    brand = SyntheticBrand(seed=args.seed, customers=args.customers, until=datetime(2026, 11, 1, tzinfo=UTC))
    table, truth = records(brand)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "records.parquet")
        pq.write_table(table, path)
        runs = [in_child(ours, path) for _ in range(max(1, args.repeat))]
        rebuild_s, ours_total = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        ours_rss, shared, conflicts = max(r[2] for r in runs), runs[0][3], runs[0][4]
        predicted = pq.read_table(path + ".ours.parquet")
        splink = None
        if args.splink and importlib.util.find_spec("splink") is None:
            print("Splink comparison skipped: pip install splink")
        elif args.splink:
            splink = in_child(splink_peer, path), pq.read_table(path + ".splink.parquet")
    peer = plain_components(table)
    people, impure, split = score(predicted, truth)
    print(
        f"{table.num_rows:,} identity records, {predicted.num_rows:,} identifiers, "
        f"{people:,} people found for {args.customers:,} true people"
    )
    print(
        f"rebuild median of {len(runs)} {rebuild_s:.2f} s (runs {', '.join(f'{r[0]:.2f}' for r in runs)}; "
        f"with reading the records {ours_total:.2f} s), peak RSS {ours_rss:,.0f} MB; "
        f"plain connected components {peer:.2f} s (rebuild x{rebuild_s / peer:.1f})"
    )
    print(
        f"people mixing true people: {impure:,} ({impure / people:.3%}); "
        f"true people split: {split:,} ({split / args.customers:.3%}); shared values {shared:,}; "
        f"conflicts {conflicts:,}"
    )
    if splink is not None:
        (splink_s, splink_rss), clusters = splink
        labelled = (
            table.join(clusters, "obs", "unique_id")
            .group_by(["kind", "scope", "value"])
            .aggregate([("cluster_id", "min")])
            .rename_columns(["kind", "scope", "value", "label"])
        )
        strong = labelled.filter(pc.not_equal(labelled.column("kind"), "masked_phone"))  # as ours: no person
        s_people, s_impure, s_split = score(strong, truth)
        print(
            f"Splink deterministic linkage (DuckDB), reading the same records: {splink_s:.2f} s, "
            f"peak RSS {splink_rss:,.0f} MB; ours is x{splink_s / ours_total:.1f} faster; "
            f"{s_people:,} people, mixing {s_impure:,}, split {s_split:,}"
        )


def score(predicted: pa.Table, truth: pa.Table) -> tuple[int, int, int]:
    """People found, how many mix true people, how many true people are split."""
    scored = predicted.join(truth, ["kind", "scope", "value"]).filter(pc.greater_equal(pc.field("label"), 0))
    per_label = scored.group_by("label").aggregate([("person", "count_distinct")])
    impure = pc.sum(pc.greater(per_label.column("person_count_distinct"), 1)).as_py() or 0
    per_person = scored.group_by("person").aggregate([("label", "count_distinct")])
    split = pc.sum(pc.greater(per_person.column("label_count_distinct"), 1)).as_py() or 0
    return per_label.num_rows, impure, split


if __name__ == "__main__":
    main()
