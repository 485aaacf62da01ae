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
from siyu.identity.partition import Conflict, Link, solve, sort_key
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


def rebuild(
    records: pa.Table,
    rules: IdentityRules = DEFAULT_RULES,
    must_link: Sequence[Link] = (),
    cannot_link: Sequence[Link] = (),
) -> Rebuilt:
    """``records``: columns obs (int64), kind, scope, value (strings) — one row per identifier seen."""
    kind_enc = pc.dictionary_encode(records.column("kind")).combine_chunks()
    kind_names = kind_enc.dictionary.to_pylist()
    merges = np.array([rules.rule(IdentifierKind(k)).merges for k in kind_names], dtype=bool)
    k_all = kind_enc.indices.to_numpy()
    rows = np.flatnonzero(merges[k_all]) if len(k_all) else np.zeros(0, dtype=np.int64)
    scope_enc = pc.dictionary_encode(records.column("scope")).combine_chunks()
    value_enc = pc.dictionary_encode(records.column("value")).combine_chunks()
    # Encoding millions of strings leaves the hash tables' memory cached in Arrow's pool: give
    # it back before the graph is built (16M records fit in 4 GB this way).
    pa.default_memory_pool().release_unused()
    obs = _dense(records.column("obs").to_numpy()[rows])
    k = k_all[rows].astype(np.int32)
    s = scope_enc.indices.to_numpy()[rows].astype(np.int32)
    v = value_enc.indices.to_numpy()[rows].astype(np.int32)
    node_of, node_k, node_s, node_v = _nodes(k, s, v, len(value_enc.dictionary))
    n = len(node_v)
    group = node_k * (1 << 26) + node_s  # (kind, scope)
    shared = _shared(obs, node_of, group, node_k, kind_names, rules)

    # Edges: each live identifier to one live identifier of its observation (a star connects the
    # same people as the observation's clique; no sort needed).
    live = ~shared[node_of]
    live_obs, live_node = obs[live], node_of[live]
    hub = np.full(int(obs.max()) + 1 if len(obs) else 0, -1, dtype=np.int64)
    hub[live_obs] = live_node
    src, dst = live_node, hub[live_obs]
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _count, component = connected_components(graph, directed=False)

    # Components that break a cap, or carry a manual constraint, go to the constrained solver.
    cap_by_kind = np.array([rules.rule(IdentifierKind(k)).max_per_profile or 0 for k in kind_names])
    caps = cap_by_kind[node_k]
    capped = np.flatnonzero((caps > 0) & ~shared)
    per_group = pc.value_counts(pa.array(component[capped].astype(np.int64) * (1 << 40) + group[capped]))
    counted = per_group.field("values").to_numpy()
    over = per_group.field("counts").to_numpy() > cap_by_kind[(counted & ((1 << 40) - 1)) >> 26]
    hard = set((counted[over] >> 40).tolist())
    lookup = _Lookup(kind_enc.dictionary, scope_enc.dictionary, value_enc.dictionary, node_k, node_s, node_v)
    for a, b in [*must_link, *cannot_link]:
        for ident in (a, b):
            found = lookup.index(ident)
            if found is not None:
                hard.add(int(component[found]))

    person = component.astype(np.int64).copy()
    conflicts: list[Conflict] = []
    if hard:
        next_label = int(component.max()) + 1 if n else 0
        in_hard = np.isin(component, np.fromiter(hard, dtype=np.int64))
        hard_nodes = np.flatnonzero(in_hard & ~shared)
        idents = {int(i): lookup.identifier(int(i)) for i in hard_nodes}
        # Exactly the reference's links: every two live identifiers of an observation.
        rows = np.flatnonzero(live & in_hard[node_of])
        members: dict[int, set[Identifier]] = {}
        for o, node in zip(obs[rows].tolist(), node_of[rows].tolist(), strict=True):
            members.setdefault(o, set()).add(idents[node])
        links: set[Link] = set()
        for seen_together in members.values():
            ordered = sorted(seen_together, key=lambda i: sort_key(i, rules))
            links.update((x, y) for k, x in enumerate(ordered) for y in ordered[k + 1 :])
        people, conflicts = solve(idents.values(), links, rules, must_link, cannot_link)
        label_of = {ident: next_label + i for i, p in enumerate(people) for ident in p}
        for i, ident in idents.items():
            person[i] = label_of[ident]

    person[shared] = -1
    shared_idx = np.flatnonzero(shared)
    return Rebuilt(
        kinds=pc.take(kind_enc.dictionary, pa.array(node_k)),
        scopes=pc.take(scope_enc.dictionary, pa.array(node_s)),
        values=pc.take(value_enc.dictionary, pa.array(node_v)),
        person=person,
        shared=pa.table(
            {
                "kind": pc.take(kind_enc.dictionary, pa.array(node_k[shared_idx])),
                "scope": pc.take(scope_enc.dictionary, pa.array(node_s[shared_idx])),
                "value": pc.take(value_enc.dictionary, pa.array(node_v[shared_idx])),
            }
        ),
        conflicts=conflicts,
    )


def _dense(obs: np.ndarray) -> np.ndarray:
    """Observation ids as small non-negative integers (array indices): as they are when already
    dense, else renumbered."""
    if len(obs) == 0:
        return obs.astype(np.int32)
    low, high = int(obs.min()), int(obs.max())
    if high - low < 4 * len(obs) + 1024 and high - low < 2**31:
        return (obs - low).astype(np.int32)
    return np.unique(obs, return_inverse=True)[1].ravel().astype(np.int32)


def _nodes(
    k: np.ndarray, s: np.ndarray, v: np.ndarray, n_values: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Number the distinct (kind, scope, value) of the rows: each row's node, and each node's kind,
    scope and value codes. Almost always a value string belongs to one kind and scope, and then
    the value's dictionary code is the node (no sort, no hash); otherwise the triples are sorted."""
    ks = (k.astype(np.int64) << 26) | s
    ks_of_value = np.full(n_values, -1, dtype=np.int64)
    ks_of_value[v] = ks
    if np.array_equal(ks_of_value[v], ks):
        values = np.flatnonzero(ks_of_value >= 0)
        renumber = np.full(n_values, -1, dtype=np.int64)
        renumber[values] = np.arange(len(values))
        node_ks = ks_of_value[values]
        return renumber[v], node_ks >> 26, node_ks & ((1 << 26) - 1), values
    keys, node_of = np.unique((ks << 32) | v.astype(np.int64), return_inverse=True)
    node_ks = keys >> 32
    return node_of.ravel(), node_ks >> 26, node_ks & ((1 << 26) - 1), keys & ((1 << 32) - 1)


def _shared(
    obs: np.ndarray,
    node_of: np.ndarray,
    group: np.ndarray,
    node_k: np.ndarray,
    kind_names: list[str],
    rules: IdentityRules,
) -> np.ndarray:
    """Nodes seen with more than their kind's shared_limit distinct values of one other group.

    Only nodes whose observations hold more than that many other identifiers in all can be shared:
    those few are checked exactly, the millions of others never enter the self-join.
    """
    n = len(group)
    shared = np.zeros(n, dtype=bool)
    limits = np.array([rules.rule(IdentifierKind(k)).shared_limit or -1 for k in kind_names])
    if len(obs) == 0 or limits.max() < 0:
        return shared
    size_of_row = np.bincount(obs)[obs]
    others = np.bincount(node_of, weights=size_of_row - 1, minlength=n)
    limit_of = limits[node_k]
    candidate = (limit_of >= 0) & (others > limit_of)
    if not candidate.any():
        return shared
    hit = np.zeros(int(obs.max()) + 1, dtype=bool)
    hit[obs[candidate[node_of]]] = True
    rows = np.flatnonzero(hit[obs])
    pairs = pa.table({"obs": obs[rows], "node": node_of[rows]})
    joined = pairs.join(pairs, "obs", right_suffix="_w")
    v_side = joined.column("node").to_numpy()
    w_side = joined.column("node_w").to_numpy()
    keep = candidate[v_side] & (group[v_side] != group[w_side])
    seen = pa.table({"v": v_side[keep], "g": group[w_side[keep]], "w": w_side[keep]})
    distinct = seen.group_by(["v", "g"]).aggregate([("w", "count_distinct")])
    most = distinct.group_by("v").aggregate([("w_count_distinct", "max")])
    v_ids = most.column("v").to_numpy()
    shared[v_ids] = most.column("w_count_distinct_max").to_numpy() > limit_of[v_ids]
    return shared


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
        self._order: np.ndarray | None = None

    def identifier(self, i: int) -> Identifier:
        return Identifier(
            IdentifierKind(self.kinds[self.node_k[i]]),
            self.scopes[self.node_s[i]],
            self.values[int(self.node_v[i])].as_py(),
        )

    def index(self, ident: Identifier) -> int | None:
        k, s = self.k_index.get(ident.kind.value), self.s_index.get(ident.scope)
        if k is None or s is None:
            return None
        found = pc.index(self.values, ident.value).as_py()
        if found < 0:
            return None
        if self._order is None:  # sorted once, for operators' constraints
            self._order = np.argsort(self.node_v, kind="stable")
        lo, hi = np.searchsorted(self.node_v, [found, found + 1], sorter=self._order)
        for i in self._order[lo:hi].tolist():
            if self.node_k[i] == k and self.node_s[i] == s:
                return int(i)
        return None
