"""The identity rebuild as Ibis expressions, for data beyond one machine (Spark) — the same
partition as :func:`siyu.identity.rebuild.rebuild`, by the same steps:

1. nodes: distinct (kind, scope, value) of merging kinds;
2. shared values: a node seen with more than its kind's ``shared_limit`` distinct values of one
   other (kind, scope) links nobody;
3. links: every live identifier of an observation to the observation's smallest one (a star
   connects what the observation's clique connects);
4. connected components by min-label propagation, one join and one aggregation per round, until
   no label changes;
5. components that break a cap (two unionids) or hold an operator's constraint — few and
   small — are collected and handed to ``partition.solve``, exactly as on one machine.

Any Ibis backend runs it: Spark beyond one machine, DuckDB for tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from siyu.identity.contracts import Identifier, IdentifierKind
from siyu.identity.partition import Conflict, Link, solve, sort_key
from siyu.identity.rebuild import Rebuilt
from siyu.identity.rules import DEFAULT_RULES, IdentityRules

MAX_ROUNDS = 100


def _put(con: Any, table: pa.Table) -> ir.Table:
    """The table as a temporary table of ``con``, so every step runs (and caches) there and
    nothing outlives the session (Spark: a temporary view of a DataFrame built from Arrow)."""
    name = f"siyu_rebuild_{uuid.uuid4().hex}"
    if con.name == "pyspark":
        con._session.createDataFrame(table).createOrReplaceTempView(name)
        return con.table(name)
    return con.create_table(name, table, temp=True)


def _materialize(con: Any, expr: ir.Table) -> ir.Table:
    """Compute ``expr`` now and continue from its result, so each propagation round starts from
    data rather than from the whole history of rounds (Spark: a local checkpoint, which cuts the
    lineage; elsewhere a temporary table)."""
    name = f"siyu_rebuild_{uuid.uuid4().hex}"
    if con.name == "pyspark":
        con._session.sql(str(con.compile(expr))).localCheckpoint().createOrReplaceTempView(name)
        return con.table(name)
    return con.create_table(name, expr, temp=True)


def _rules_table(con: Any, rules: IdentityRules) -> ir.Table:
    kinds = list(IdentifierKind)
    return _put(
        con,
        pa.table(
            {
                "kind": [k.value for k in kinds],
                "merges": [rules.rule(k).merges for k in kinds],
                # No nulls (some backends load them as NaN): 0 = no cap, -1 = never shared.
                "cap": pa.array([rules.rule(k).max_per_profile or 0 for k in kinds], pa.int64()),
                "shared_limit": pa.array([rules.rule(k).shared_limit or -1 for k in kinds], pa.int64()),
            }
        ),
    )


def rebuild_on(
    con: Any,
    records: pa.Table,
    rules: IdentityRules = DEFAULT_RULES,
    must_link: Sequence[Link] = (),
    cannot_link: Sequence[Link] = (),
) -> Rebuilt:
    """``records`` as for :func:`siyu.identity.rebuild.rebuild`; ``con`` an Ibis backend."""
    rules_t = _rules_table(con, rules)
    raw = _put(con, records.select(["obs", "kind", "scope", "value"]))
    r = raw.join(rules_t, "kind").filter(ibis._.merges)
    nodes = (
        r.select("kind", "scope", "value", "cap", "shared_limit")
        .distinct()
        .mutate(node=ibis.row_number().over(order_by=["kind", "scope", "value"]))
        .mutate(grp=ibis._.kind.concat("|", ibis._.scope))
    )
    nodes = _materialize(con, nodes)
    rows = _materialize(con, r.join(nodes, ["kind", "scope", "value"]).select("obs", "node", "grp").distinct())

    # Shared values.
    v, w = rows.view(), rows.view()
    seen = (
        v.join(w, v.obs == w.obs)
        .filter(v.grp != w.grp)
        .group_by([v.node.name("v"), w.grp.name("g")])
        .agg(n=w.node.nunique())
    )
    over = seen.join(nodes, seen.v == nodes.node).filter((nodes.shared_limit >= 0) & (seen.n > nodes.shared_limit))
    shared = _materialize(con, over.select(node=over.v).distinct())
    live = _materialize(con, rows.anti_join(shared, "node"))

    # Links: each live identifier to its observation's smallest live identifier, both ways.
    root = live.group_by("obs").agg(root=live.node.min())
    star = live.join(root, "obs").filter(ibis._.node != ibis._.root)
    edges = _materialize(
        con, star.select(src=star.node, dst=star.root).union(star.select(src=star.root, dst=star.node)).distinct()
    )

    # Connected components: every node takes the smallest label among its neighbours'.
    labels = _materialize(con, live.select("node").distinct().mutate(label=ibis._.node))
    for _round in range(MAX_ROUNDS):
        offered = edges.join(labels, edges.dst == labels.node).group_by(node=edges.src).agg(offer=labels.label.min())
        moved = labels.left_join(offered, "node")
        nxt = _materialize(
            con, moved.select(node=moved.node, label=ibis.least(moved.label, moved.offer.fill_null(moved.label)))
        )
        changed = int(nxt.join(labels, "node").filter(nxt.label != labels.label).count().execute())
        labels = nxt
        if changed == 0:
            break
    else:  # pragma: no cover - identity graphs have small diameters
        raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")

    # Components over a cap go to the constrained solver.
    capped = labels.join(nodes, "node").filter(nodes.cap > 0)
    per_group = capped.group_by(["label", "grp"]).agg(n=capped.node.count(), cap=capped.cap.max())
    hard_labels = set(per_group.filter(per_group.n > per_group.cap).select("label").to_pyarrow().column(0).to_pylist())

    table = (
        nodes.left_join(labels, "node").select("node", "kind", "scope", "value", "label").order_by("node").to_pyarrow()
    )
    shared_ids = set(shared.to_pyarrow().column("node").to_pylist())
    node_ids = table.column("node").to_numpy()
    kinds, scopes, values = (table.column(c).to_pylist() for c in ("kind", "scope", "value"))
    labels_np = np.array([-1 if x is None else x for x in table.column("label").to_pylist()], dtype=np.int64)
    position = {int(n): i for i, n in enumerate(node_ids)}
    ident_of = {
        int(n): Identifier(IdentifierKind(k), s, val)
        for n, k, s, val in zip(node_ids, kinds, scopes, values, strict=True)
    }
    by_ident = {ident: n for n, ident in ident_of.items()}
    for a, b in [*must_link, *cannot_link]:
        for ident in (a, b):
            if ident in by_ident and by_ident[ident] not in shared_ids:
                hard_labels.add(int(labels_np[position[by_ident[ident]]]))

    person = labels_np.copy()
    conflicts: list[Conflict] = []
    if hard_labels:
        hard_rows = (
            live.join(labels, "node").filter(labels.label.isin(list(hard_labels))).select("obs", "node").to_pyarrow()
        )
        members: dict[int, set[Identifier]] = {}
        for o, n in zip(hard_rows.column("obs").to_pylist(), hard_rows.column("node").to_pylist(), strict=True):
            members.setdefault(o, set()).add(ident_of[n])
        links: set[Link] = set()
        for together in members.values():
            ordered = sorted(together, key=lambda i: sort_key(i, rules))
            links.update((x, y) for k, x in enumerate(ordered) for y in ordered[k + 1 :])
        hard_nodes = [n for n, i in position.items() if int(labels_np[i]) in hard_labels]
        people, conflicts = solve([ident_of[n] for n in hard_nodes], links, rules, must_link, cannot_link)
        next_label = int(labels_np.max()) + 1
        label_of = {ident: next_label + k for k, p in enumerate(people) for ident in p}
        for n in hard_nodes:
            person[position[n]] = label_of[ident_of[n]]
    for n in shared_ids:
        person[position[n]] = -1
    shared_pos = sorted(position[n] for n in shared_ids)
    return Rebuilt(
        kinds=pa.array(kinds, pa.string()),
        scopes=pa.array(scopes, pa.string()),
        values=pa.array(values, pa.string()),
        person=person,
        shared=pa.table(
            {
                "kind": pa.array([kinds[i] for i in shared_pos], pa.string()),
                "scope": pa.array([scopes[i] for i in shared_pos], pa.string()),
                "value": pa.array([values[i] for i in shared_pos], pa.string()),
            }
        ),
        conflicts=conflicts,
    )
