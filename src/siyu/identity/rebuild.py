"""Full identity rebuild on one machine: the partition of ``partition.resolve`` for millions of
identifier records, with Arrow dictionary encoding and scipy's connected components.

Components that break no cap and hold no manual constraint are final as they are (the
constrained union-find would join all of them); the few that do are handed to
``partition.solve`` with exactly the links the reference builds, so both give the same people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from siyu.identity.contracts import Identifier, IdentifierKind
from siyu.identity.partition import Conflict, Link, solve
from siyu.identity.rules import DEFAULT_RULES, IdentityRules


@dataclass(frozen=True)
class Rebuilt:
    """``person[i]`` is the person label of node ``i`` (-1: shared, nobody's); nodes are
    (kind, scope, value) rows."""

    kinds: pa.Array
    scopes: pa.Array
    values: pa.Array
    person: np.ndarray
    shared: pa.Table  # kind, scope, value of shared identifiers
    conflicts: list[Conflict]

    def people(self) -> set[frozenset[Identifier]]:
        """As sets of identifiers (for tests and small data)."""
        groups: dict[int, set[Identifier]] = {}
        for k, s, v, p in zip(
            self.kinds.to_pylist(), self.scopes.to_pylist(), self.values.to_pylist(), self.person.tolist(), strict=True
        ):
            if p >= 0:
                groups.setdefault(p, set()).add(Identifier(IdentifierKind(k), s, v))
        return {frozenset(g) for g in groups.values()}


def _rank(strings: pa.Array) -> np.ndarray:
    """Rank of each dictionary string in sorted order (ties impossible: dictionary is unique)."""
    order = pc.sort_indices(strings).to_numpy()  # Arrow's string sort: no Python objects
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def rebuild(
    records: pa.Table,
    rules: IdentityRules = DEFAULT_RULES,
    must_link: Sequence[Link] = (),
    cannot_link: Sequence[Link] = (),
) -> Rebuilt:
    """``records``: columns obs (int64), kind, scope, value (strings) — one row per identifier seen."""
    merging_kinds = [k.value for k in IdentifierKind if rules.rule(k).merges]
    records = records.filter(pc.is_in(records.column("kind"), pa.array(merging_kinds)))
    obs = records.column("obs").to_numpy()
    kind_enc = pc.dictionary_encode(records.column("kind")).combine_chunks()
    scope_enc = pc.dictionary_encode(records.column("scope")).combine_chunks()
    value_enc = pc.dictionary_encode(records.column("value")).combine_chunks()
    k_codes = kind_enc.indices.to_numpy().astype(np.int64)
    s_codes = scope_enc.indices.to_numpy().astype(np.int64)
    v_codes = value_enc.indices.to_numpy().astype(np.int64)
    keys = (k_codes << 58) | (s_codes << 32) | v_codes
    node_keys, node_of = np.unique(keys, return_inverse=True)
    n = len(node_keys)
    node_k = node_keys >> 58
    node_s = (node_keys >> 32) & ((1 << 26) - 1)
    node_v = node_keys & ((1 << 32) - 1)
    kind_names = kind_enc.dictionary.to_pylist()
    priority = np.array([rules.rule(IdentifierKind(k)).priority for k in kind_names])[node_k]
    group = node_k * (1 << 26) + node_s  # (kind, scope)

    # Shared values: seen with more than shared_limit distinct values of one other (kind, scope).
    pairs = pa.table({"obs": obs, "node": node_of}).group_by(["obs", "node"]).aggregate([])
    joined = pairs.join(pairs, "obs", right_suffix="_w")
    v_side = joined.column("node").to_numpy()
    w_side = joined.column("node_w").to_numpy()
    other = group[v_side] != group[w_side]
    seen = pa.table({"v": v_side[other], "g": group[w_side[other]], "w": w_side[other]})
    distinct = seen.group_by(["v", "g"]).aggregate([("w", "count_distinct")])
    most = distinct.group_by("v").aggregate([("w_count_distinct", "max")])
    limits = np.array([rules.rule(IdentifierKind(k)).shared_limit or np.iinfo(np.int64).max for k in kind_names])
    shared = np.zeros(n, dtype=bool)
    v_ids = most.column("v").to_numpy()
    shared[v_ids] = most.column("w_count_distinct_max").to_numpy() > limits[node_k[v_ids]]

    # Links: every two live identifiers seen together, strongest first within the pair.
    rank = np.lexsort(
        (
            _rank(value_enc.dictionary)[node_v],
            _rank(scope_enc.dictionary)[node_s],
            _rank(kind_enc.dictionary)[node_k],
            -priority,
        )
    )
    rank_of = np.empty(n, dtype=np.int64)
    rank_of[rank] = np.arange(n)
    both_live = ~shared[v_side] & ~shared[w_side] & (rank_of[v_side] < rank_of[w_side])
    src, dst = v_side[both_live], w_side[both_live]

    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _count, component = connected_components(graph, directed=False)

    # Components that break a cap, or carry a manual constraint, go to the constrained solver.
    cap_by_kind = np.array([rules.rule(IdentifierKind(k)).max_per_profile or 0 for k in kind_names])
    caps = cap_by_kind[node_k]
    capped = np.flatnonzero((caps > 0) & ~shared)
    per_group = pa.table({"c": component[capped], "g": group[capped]}).group_by(["c", "g"]).aggregate([("c", "count")])
    group_kind = per_group.column("g").to_numpy() >> 26
    over = per_group.column("c_count").to_numpy() > cap_by_kind[group_kind]
    hard = set(per_group.column("c").to_numpy()[over].tolist())
    lookup = _Lookup(kind_enc.dictionary, scope_enc.dictionary, value_enc.dictionary, node_k, node_s, node_v)
    for a, b in [*must_link, *cannot_link]:
        for ident in (a, b):
            found = lookup.index(ident, node_keys)
            if found is not None:
                hard.add(int(component[found]))

    person = component.astype(np.int64).copy()
    conflicts: list[Conflict] = []
    if hard:
        next_label = int(component.max()) + 1 if n else 0
        in_hard = np.isin(component, np.fromiter(hard, dtype=np.int64))
        hard_nodes = np.flatnonzero(in_hard & ~shared)
        link_mask = in_hard[src]
        idents = {int(i): lookup.identifier(int(i)) for i in hard_nodes}
        links = [(idents[int(a)], idents[int(b)]) for a, b in zip(src[link_mask], dst[link_mask], strict=True)]
        people, conflicts = solve(idents.values(), links, rules, must_link, cannot_link)
        label_of = {ident: next_label + i for i, p in enumerate(people) for ident in p}
        for i, ident in idents.items():
            person[i] = label_of[ident]

    person[shared] = -1
    names = np.array(kind_names, dtype=object)
    shared_idx = np.flatnonzero(shared)
    return Rebuilt(
        kinds=pa.array(names[node_k].tolist(), pa.string()),
        scopes=pc.take(scope_enc.dictionary, pa.array(node_s)),
        values=pc.take(value_enc.dictionary, pa.array(node_v)),
        person=person,
        shared=pa.table(
            {
                "kind": pa.array(names[node_k[shared_idx]].tolist(), pa.string()),
                "scope": pc.take(scope_enc.dictionary, pa.array(node_s[shared_idx])),
                "value": pc.take(value_enc.dictionary, pa.array(node_v[shared_idx])),
            }
        ),
        conflicts=conflicts,
    )


class _Lookup:
    def __init__(
        self,
        kinds: pa.Array,
        scopes: pa.Array,
        values: pa.Array,
        node_k: np.ndarray,
        node_s: np.ndarray,
        node_v: np.ndarray,
    ) -> None:
        self.kinds, self.scopes, self.values = kinds.to_pylist(), scopes.to_pylist(), values
        self.k_index = {k: i for i, k in enumerate(self.kinds)}
        self.s_index = {s: i for i, s in enumerate(self.scopes)}
        self.node_k, self.node_s, self.node_v = node_k, node_s, node_v

    def identifier(self, i: int) -> Identifier:
        return Identifier(
            IdentifierKind(self.kinds[self.node_k[i]]),
            self.scopes[self.node_s[i]],
            self.values[int(self.node_v[i])].as_py(),
        )

    def index(self, ident: Identifier, node_keys: np.ndarray) -> int | None:
        k, s = self.k_index.get(ident.kind.value), self.s_index.get(ident.scope)
        if k is None or s is None:
            return None
        found = pc.index(self.values, ident.value).as_py()
        if found < 0:
            return None
        key = (k << 58) | (s << 32) | found
        pos = int(np.searchsorted(node_keys, key))
        return pos if pos < len(node_keys) and node_keys[pos] == key else None
