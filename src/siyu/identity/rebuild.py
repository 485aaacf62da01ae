"""Full identity rebuild on one machine: the partition of ``partition.resolve`` for millions of
identifier records, with Arrow dictionary encoding and scipy's connected components.

Components that break no cap and hold no manual constraint are final as they are (the
constrained union-find would join all of them); the few that do are handed to
``partition.solve`` with exactly the links the reference builds, so both give the same people.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
    merges = [rules.rule(IdentifierKind(k)).merges for k in kind_names]
    nodes = _encode(records, kind_enc.indices.to_numpy(), merges)
    obs, node_of, node_k = _dense(records.column("obs").to_numpy()[nodes.rows]), nodes.node_of, nodes.kind
    n = len(node_k)
    group = node_k.astype(np.int64) * (1 << 26) + nodes.scope  # (kind, scope)
    shared = _shared(obs, node_of, group, node_k, kind_names, rules)

    # Edges: each live identifier to one live identifier of its observation (a star connects the
    # same people as the observation's clique; no sort needed).
    live = ~shared[node_of]
    live_obs, live_node = obs[live], node_of[live]
    hub = np.full(int(obs.max()) + 1 if len(obs) else 0, -1, dtype=np.int32)
    hub[live_obs] = live_node
    src, dst = live_node, hub[live_obs]
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _count, component = connected_components(graph, directed=False)

    # Components that break a cap, or carry a manual constraint, go to the constrained solver.
    hard = _over_cap(component, group, node_k, shared, kind_names, rules)
    kinds, scopes = kind_enc.dictionary, pa.array(nodes.scope_names, pa.string())
    lookup = _Lookup(kinds, scopes, nodes.values, node_k, nodes.scope)
    found = lookup.nodes([ident for link in [*must_link, *cannot_link] for ident in link])
    hard.update(int(component[i]) for i in found.values())

    person = component.astype(np.int64)
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
    shared_idx = pa.array(np.flatnonzero(shared))
    kind_of, scope_of = _decoded(node_k, kinds), _decoded(nodes.scope, scopes)
    return Rebuilt(
        kinds=kind_of,
        scopes=scope_of,
        values=nodes.values,
        person=person,
        shared=pa.table(
            {
                "kind": pc.take(kind_of, shared_idx).cast(pa.string()),
                "scope": pc.take(scope_of, shared_idx).cast(pa.string()),
                "value": pc.take(nodes.values, shared_idx),
            }
        ),
        conflicts=conflicts,
    )


@dataclass(frozen=True)
class _Nodes:
    """The distinct (kind, scope, value) of the merging rows of the records, numbered: the rows
    (``rows``) with each row's node (``node_of``), and each node's kind code, scope code (into
    ``scope_names``) and value string."""

    rows: np.ndarray
    node_of: np.ndarray
    kind: np.ndarray
    scope: np.ndarray
    scope_names: list[str]
    values: pa.Array


def _encode(records: pa.Table, kind_codes: np.ndarray, merges: list[bool]) -> _Nodes:
    """Number the nodes one kind at a time, the kinds spread over all cores. Per kind the value
    strings get a dictionary of their own: those are smaller (their hash tables stay in cache)
    and independent, and rows of kinds that never merge (masked phones) are never hashed."""
    kinds = [code for code, merging in enumerate(merges) if merging]
    picked = {code: np.flatnonzero(kind_codes == code) for code in kinds}
    order = sorted((code for code in kinds if len(picked[code])), key=lambda code: -len(picked[code]))
    # Taking rows out of one contiguous array is several times faster than out of many chunks.
    scope_col, value_col = records.column("scope").combine_chunks(), records.column("value").combine_chunks()

    def encode(code: int) -> tuple[np.ndarray, np.ndarray, list[str], pa.Array]:
        rows = pa.array(picked[code])
        scope = pc.dictionary_encode(pc.take(scope_col, rows))
        value = pc.dictionary_encode(pc.take(value_col, rows))
        node_of = value.indices.to_numpy().astype(np.int32)
        scope_codes = scope.indices.to_numpy().astype(np.int32)
        node_scope = np.zeros(len(value.dictionary), dtype=np.int32)
        node_scope[node_of] = scope_codes
        if len(scope.dictionary) == 1 or np.array_equal(node_scope[node_of], scope_codes):
            return node_of, node_scope, scope.dictionary.to_pylist(), value.dictionary
        # One value string under several scopes of the kind: the nodes are the distinct pairs.
        keys, pair_of = np.unique((scope_codes.astype(np.int64) << 32) | node_of, return_inverse=True)
        values = pc.take(value.dictionary, pa.array(keys & ((1 << 32) - 1)))
        return pair_of.ravel().astype(np.int32), (keys >> 32).astype(np.int32), scope.dictionary.to_pylist(), values

    with ThreadPoolExecutor(max_workers=max(1, min(len(order), os.cpu_count() or 1))) as pool:
        parts = list(pool.map(encode, order))
    # Encoding millions of strings leaves the hash tables' memory cached in Arrow's pool: give
    # it back before the graph is built (16M records fit in 4 GB this way).
    pa.default_memory_pool().release_unused()
    scope_id: dict[str, int] = {}
    node_of, node_kind, node_scope, offset = [], [], [], 0
    for code, (of, scope_codes, names, values) in zip(order, parts, strict=True):
        to_global = np.array([scope_id.setdefault(name, len(scope_id)) for name in names], dtype=np.int32)
        node_of.append(of + offset)
        node_kind.append(np.full(len(values), code, dtype=np.int32))
        node_scope.append(to_global[scope_codes])
        offset += len(values)
    empty = np.zeros(0, dtype=np.int32)
    return _Nodes(
        rows=np.concatenate([picked[code] for code in order]) if order else np.zeros(0, dtype=np.int64),
        node_of=np.concatenate(node_of) if order else empty,
        kind=np.concatenate(node_kind) if order else empty,
        scope=np.concatenate(node_scope) if order else empty,
        scope_names=list(scope_id),
        values=pa.concat_arrays([part[3] for part in parts]) if order else pa.array([], pa.string()),
    )


def _decoded(codes: np.ndarray, dictionary: pa.Array) -> pa.Array:
    """The strings at ``codes`` as a dictionary array (no strings copied)."""
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), dictionary)


def _over_cap(
    component: np.ndarray,
    group: np.ndarray,
    node_k: np.ndarray,
    shared: np.ndarray,
    kind_names: list[str],
    rules: IdentityRules,
) -> set[int]:
    """Components holding more live identifiers of one (kind, scope) than the kind allows."""
    caps = np.array([rules.rule(IdentifierKind(k)).max_per_profile or 0 for k in kind_names])
    capped = (caps[node_k] > 0) & ~shared
    hard: set[int] = set()
    size = int(component.max()) + 1 if len(component) else 0
    for g in np.unique(group[capped]).tolist():
        members = component[capped & (group == g)]
        counts = np.bincount(members, minlength=size)
        hard.update(np.flatnonzero(counts > caps[g >> 26]).tolist())
    return hard


def _dense(obs: np.ndarray) -> np.ndarray:
    """Observation ids as small non-negative integers (array indices): as they are when already
    dense, else renumbered."""
    if len(obs) == 0:
        return obs.astype(np.int32)
    low, high = int(obs.min()), int(obs.max())
    if high - low < 4 * len(obs) + 1024 and high - low < 2**31:
        return (obs - low).astype(np.int32)
    return np.unique(obs, return_inverse=True)[1].ravel().astype(np.int32)


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
        self, kinds: pa.Array, scopes: pa.Array, values: pa.Array, node_k: np.ndarray, node_s: np.ndarray
    ) -> None:
        self.kinds, self.scopes, self.values = kinds.to_pylist(), scopes.to_pylist(), values
        self.node_k, self.node_s = node_k, node_s

    def identifier(self, i: int) -> Identifier:
        return Identifier(
            IdentifierKind(self.kinds[self.node_k[i]]), self.scopes[self.node_s[i]], self.values[i].as_py()
        )

    def nodes(self, idents: Sequence[Identifier]) -> dict[Identifier, int]:
        """The node of each of ``idents`` that is one (operators' constraints: one pass for all)."""
        if not idents:
            return {}
        wanted = set(idents)
        hits = np.flatnonzero(pc.is_in(self.values, pa.array(sorted({i.value for i in wanted}))).to_numpy(False))
        found: dict[Identifier, int] = {}
        for i in hits.tolist():
            ident = self.identifier(i)
            if ident in wanted:
                found[ident] = i
        return found
