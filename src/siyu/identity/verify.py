"""Full rebuild of a workspace's identity graph, compared with the stored people and repaired.

The rebuild reads what resolution keeps — every identifier, every pair of identifiers seen
together (an observation of two: the same links and the same shared-value counts as the
original observations), and operators' constraints — and computes the whole partition at once
with :func:`siyu.identity.rebuild.rebuild`. Stored people that differ (rules changed since, data
written around the resolver) are re-solved through the incremental path, whose solver is the
same; afterwards the stored people are exactly the rebuilt ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.identity.contracts import Identifier, IdentifierKind
from siyu.identity.partition import Link
from siyu.identity.rebuild import Rebuilt, rebuild
from siyu.identity.resolver import ProfileChange, resolve_again
from siyu.identity.rules import IdentityRules
from siyu.identity.settings import workspace_rules
from siyu.identity.tables import Identity, IdentityConstraint, IdentityPair


@dataclass(frozen=True)
class RebuildOutcome:
    identifiers: int
    links: int
    people: int
    shared: int
    conflicts: int
    repaired: int  # identifiers whose stored person differed from the rebuilt one
    new_profile_ids: list[str] = field(default_factory=list)
    changes: list[ProfileChange] = field(default_factory=list)


Engine = Callable[[pa.Table, IdentityRules, Sequence[Link], Sequence[Link]], Rebuilt]


def rebuild_workspace(scoped: Session, rules: IdentityRules | None = None, engine: Engine = rebuild) -> RebuildOutcome:
    """``engine``: the one-machine rebuild, or :func:`siyu.identity.rebuild_ibis.rebuild_on` bound
    to a Spark backend for graphs beyond one machine (the same partition). ``rules``: the
    workspace's own unless given."""
    rules = rules or workspace_rules(scoped)
    merging = [k.value for k in IdentifierKind if rules.rule(k).merges]
    rows = scoped.execute(
        select(Identity.id, Identity.kind, Identity.scope, Identity.value, Identity.shared, Identity.profile_id).where(
            Identity.kind.in_(merging)
        )
    ).all()
    index = {row.id: n for n, row in enumerate(rows)}
    pairs = [
        (index[a], index[b])
        for a, b in scoped.execute(
            select(IdentityPair.identity_id, IdentityPair.other_id).where(
                IdentityPair.identity_id < IdentityPair.other_id
            )
        )
        if a in index and b in index
    ]
    # Observations: each identifier alone (so every one is a node), then each pair.
    n = len(rows)
    members = np.concatenate([np.arange(n, dtype=np.int64), np.array([x for p in pairs for x in p], dtype=np.int64)])
    obs = np.concatenate([np.arange(n, dtype=np.int64), np.repeat(np.arange(n, n + len(pairs), dtype=np.int64), 2)])
    kinds = pa.array([r.kind for r in rows], pa.string())
    scopes = pa.array([r.scope for r in rows], pa.string())
    values = pa.array([r.value for r in rows], pa.string())
    take = pa.array(members)
    records = pa.table({"obs": obs, "kind": kinds.take(take), "scope": scopes.take(take), "value": values.take(take)})
    must, cannot = _constraints(scoped)
    result = engine(records, rules, must, cannot)

    id_of = {(r.kind, r.scope, r.value): r.id for r in rows}
    label_of = {
        id_of[key]: label
        for key, label in zip(
            zip(result.kinds.to_pylist(), result.scopes.to_pylist(), result.values.to_pylist(), strict=True),
            result.person.tolist(),
            strict=True,
        )
    }
    stored = {r.id: r for r in rows}
    seeds = _differing(label_of, {r.id: r.profile_id for r in rows})

    now_shared = {i for i, label in label_of.items() if label < 0}
    flip_on = [i for i in now_shared if not stored[i].shared]
    flip_off = [i for i, r in stored.items() if r.shared and i not in now_shared]
    if flip_on:
        scoped.execute(update(Identity).where(Identity.id.in_(flip_on)).values(shared=True, profile_id=None))
    if flip_off:
        scoped.execute(update(Identity).where(Identity.id.in_(flip_off)).values(shared=False))
    if flip_on or flip_off:
        flipped = [*flip_on, *flip_off]
        seeds |= set(flipped)
        seeds |= set(scoped.scalars(select(IdentityPair.other_id).where(IdentityPair.identity_id.in_(flipped))))
    new_ids: list[str] = []
    changes: list[ProfileChange] = []
    if seeds:
        new_ids, changes = resolve_again(scoped, seeds, rules)
    return RebuildOutcome(
        identifiers=n,
        links=len(pairs),
        people=len({label for label in label_of.values() if label >= 0}),
        shared=len(now_shared),
        conflicts=len(result.conflicts),
        repaired=len(seeds),
        new_profile_ids=new_ids,
        changes=changes,
    )


def _differing(label_of: dict[str, int], profile_of: dict[str, str | None]) -> set[str]:
    """Identifiers in groups where the stored people and the rebuilt people disagree, with every
    identifier of the stored profiles involved."""
    by_label: dict[int, list[str]] = {}
    for identity_id, label in label_of.items():
        if label >= 0:
            by_label.setdefault(label, []).append(identity_id)
    members_of: dict[str, list[str]] = {}
    for identity_id, profile_id in profile_of.items():
        if profile_id is not None:
            members_of.setdefault(profile_id, []).append(identity_id)
    differing: set[str] = set()
    for ids in by_label.values():
        profiles = {profile_of[i] for i in ids}
        only = next(iter(profiles))
        if len(profiles) == 1 and only is not None and len(members_of[only]) == len(ids):
            continue
        differing.update(ids)
        for profile_id in profiles:
            if profile_id is not None:
                differing.update(members_of[profile_id])
    # Shared identifiers hold no profile.
    differing.update(i for i, label in label_of.items() if label < 0 and profile_of.get(i) is not None)
    return differing


def _constraints(scoped: Session) -> tuple[list[Link], list[Link]]:
    rows = scoped.scalars(select(IdentityConstraint)).all()
    ids = {c.left_id for c in rows} | {c.right_id for c in rows}
    idents = {
        r.id: Identifier(IdentifierKind(r.kind), r.scope, r.value, r.weak)
        for r in scoped.scalars(select(Identity).where(Identity.id.in_(ids)))
    }
    must = [(idents[c.left_id], idents[c.right_id]) for c in rows if c.kind == "must"]
    cannot = [(idents[c.left_id], idents[c.right_id]) for c in rows if c.kind == "cannot"]
    return must, cannot
