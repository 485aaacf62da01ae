"""Who is who: the partition of identifiers into people, as a pure function of what was observed.

An observation is the set of identifiers seen together (one event, order or import row). The
partition depends only on the observations and the rules — never on the order they arrived —
so the incremental path (recompute the one candidate component an observation touches) and the
batch rebuild (all components at once) give the same people. The rules:

1. Weak identifiers (masked phones) never link anything.
2. A value seen with more than ``shared_limit`` distinct values of any one other kind is
   *shared* (a shop's phone) and links nothing; it is reported.
3. Within an observation every two identifiers are linked.
4. Links are applied strongest first (must-links from manual merges before all); a link that
   would put more than ``max_per_profile`` values of a kind into one person, or join identifiers
   an operator split apart (cannot-links), is refused and reported as a conflict.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from siyu.identity.contracts import KIND_OF, Identifier
from siyu.identity.rules import DEFAULT_RULES, IdentityRules

Observation = frozenset[Identifier]
Link = tuple[Identifier, Identifier]
MANUAL_PRIORITY = 10_000


@dataclass(frozen=True)
class Conflict:
    left: Identifier
    right: Identifier
    reason: str  # "max_per_profile:<kind>" or "split"


@dataclass(frozen=True)
class Resolution:
    people: list[frozenset[Identifier]]
    shared: frozenset[Identifier]
    conflicts: list[Conflict] = field(default_factory=list)

    def person_of(self) -> dict[Identifier, int]:
        return {ident: i for i, person in enumerate(self.people) for ident in person}


def sort_key(ident: Identifier, rules: IdentityRules) -> tuple[int, str, str, str]:
    """Strongest first, then a fixed order so that ties never depend on arrival."""
    # The kind itself (a str enum: hashes and compares as its value, without the slow .value).
    return (-rules.rule(ident.kind).priority, ident.kind, ident.scope, ident.value)


def shared_values(observations: Iterable[Observation], rules: IdentityRules = DEFAULT_RULES) -> frozenset[Identifier]:
    seen_with: dict[Identifier, dict[tuple[str, str], set[str]]] = defaultdict(lambda: defaultdict(set))
    for obs in observations:
        merging = [i for i in obs if rules.rule(i.kind).merges]
        for v in merging:
            for w in merging:
                if w.kind != v.kind or w.scope != v.scope:
                    seen_with[v][(w.kind.value, w.scope)].add(w.value)
    shared = set()
    for v, groups in seen_with.items():
        limit = rules.rule(v.kind).shared_limit
        if limit is not None and any(len(values) > limit for values in groups.values()):
            shared.add(v)
    return frozenset(shared)


def observation_links(
    observations: Iterable[Observation], shared: frozenset[Identifier], rules: IdentityRules = DEFAULT_RULES
) -> tuple[set[Identifier], set[Link]]:
    """Nodes (merging, not shared identifiers) and the links between identifiers seen together."""
    nodes: set[Identifier] = set()
    links: set[Link] = set()
    for obs in observations:
        members = sorted(
            (i for i in obs if rules.rule(i.kind).merges and i not in shared), key=lambda i: sort_key(i, rules)
        )
        nodes.update(members)
        links.update((a, b) for n, a in enumerate(members) for b in members[n + 1 :])
    return nodes, links


def solve(
    nodes: Iterable[Identifier],
    links: Iterable[Link],
    rules: IdentityRules = DEFAULT_RULES,
    must_link: Sequence[Link] = (),
    cannot_link: Sequence[Link] = (),
) -> tuple[list[frozenset[Identifier]], list[Conflict]]:
    """Constrained union-find over links in canonical order (strongest first)."""
    parent: dict[Identifier, Identifier] = {n: n for n in nodes}
    for a, b in [*must_link, *cannot_link]:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
    members: dict[Identifier, set[Identifier]] = {n: {n} for n in parent}
    counts: dict[Identifier, dict[tuple[str, str], int]] = {n: {(n.kind.value, n.scope): 1} for n in parent}
    apart = [(a, b) for a, b in cannot_link]
    key = {n: sort_key(n, rules) for n in parent}  # each node's, once

    def find(x: Identifier) -> Identifier:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def strength(link: Link, manual: bool) -> tuple[object, ...]:
        ka, kb = key[link[0]], key[link[1]]
        if kb < ka:
            ka, kb = kb, ka
        # A key starts with minus the kind's priority: the weaker of the two is the larger.
        weakest = MANUAL_PRIORITY if manual else -kb[0]
        return (-weakest, ka, kb)

    ordered = sorted(((strength(lk, True), lk) for lk in must_link), key=lambda x: x[0])
    ordered += sorted(((strength(lk, False), lk) for lk in links), key=lambda x: x[0])
    conflicts: list[Conflict] = []
    for _key, (a, b) in ordered:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        reason = _refusal(ra, rb, counts, members, apart, rules)
        if reason:
            conflicts.append(Conflict(a, b, reason))
            continue
        if len(members[ra]) < len(members[rb]):
            ra, rb = rb, ra
        parent[rb] = ra
        members[ra] |= members.pop(rb)
        for group, n in counts.pop(rb).items():
            counts[ra][group] = counts[ra].get(group, 0) + n
    people = sorted((frozenset(m) for m in members.values()), key=lambda p: min(key[i] for i in p))
    return people, conflicts


def _refusal(
    ra: Identifier,
    rb: Identifier,
    counts: dict[Identifier, dict[tuple[str, str], int]],
    members: dict[Identifier, set[Identifier]],
    apart: list[Link],
    rules: IdentityRules,
) -> str | None:
    for group in counts[ra].keys() & counts[rb].keys():
        cap = rules.rule(KIND_OF[group[0]]).max_per_profile
        if cap is not None and counts[ra][group] + counts[rb][group] > cap:
            return f"max_per_profile:{group[0]}"
    for x, y in apart:
        if (x in members[ra] and y in members[rb]) or (x in members[rb] and y in members[ra]):
            return "split"
    return None


def resolve(
    observations: Sequence[Observation],
    rules: IdentityRules = DEFAULT_RULES,
    must_link: Sequence[Link] = (),
    cannot_link: Sequence[Link] = (),
) -> Resolution:
    """The reference implementation: the whole partition from all observations."""
    shared = shared_values(observations, rules)
    nodes, links = observation_links(observations, shared, rules)
    people, conflicts = solve(nodes, links, rules, must_link, cannot_link)
    return Resolution(people, shared, conflicts)
