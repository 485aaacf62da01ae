"""Incremental identity resolution, inside the caller's transaction (one per ingested event).

Each observation records which identifiers were seen together, then recomputes the one
candidate component it touches with ``partition.solve`` — the same function the batch rebuild
uses — so after any sequence of observations the stored people equal ``partition.resolve`` of
all of them. Profile ids stay stable: each person keeps the oldest profile id among its
identifiers; merges and splits are recorded in ``identity_merges``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.identity.contracts import Identifier, IdentifierKind
from siyu.identity.partition import Conflict, Link, solve, sort_key
from siyu.identity.rules import DEFAULT_RULES, IdentityRules
from siyu.identity.tables import Identity, IdentityConflict, IdentityMerge, IdentityPair
from siyu.storage.scoping import require_workspace

# A component larger than this is left to the batch rebuild (it means a guard is too loose).
MAX_COMPONENT = 5000


@dataclass(frozen=True)
class ProfileChange:
    action: str  # "merge": other disappears into survivor; "split": identifiers left other
    survivor_id: str
    other_id: str
    identity_id: str | None
    rule: str


@dataclass(frozen=True)
class Observed:
    identity_ids: dict[Identifier, str]
    primary_identity_id: str | None  # the strongest identifier: events and orders point at it
    profile_id: str | None
    new_profile_ids: list[str] = field(default_factory=list)
    changes: list[ProfileChange] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def group_of(ident: Identifier) -> str:
    return f"{ident.kind.value}|{ident.scope}"


def to_identifier(row: Identity) -> Identifier:
    return Identifier(IdentifierKind(row.kind), row.scope, row.value, row.weak)


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _upsert_identities(scoped: Session, idents: list[Identifier]) -> dict[Identifier, Identity]:
    workspace_id = require_workspace(scoped)
    now = utcnow()
    insert_ = _insert(scoped)
    rows = [
        {
            "id": new_id("idn_"),
            "workspace_id": workspace_id,
            "kind": i.kind.value,
            "scope": i.scope,
            "value": i.value,
            "weak": i.weak,
            "shared": False,
            "first_seen_at": now,
        }
        for i in idents
    ]
    scoped.execute(
        insert_(Identity).on_conflict_do_nothing(index_elements=["workspace_id", "kind", "scope", "value"]),
        rows,
    )
    keys = [(i.kind.value, i.scope, i.value) for i in idents]
    found = scoped.scalars(select(Identity).where(tuple_(Identity.kind, Identity.scope, Identity.value).in_(keys)))
    return {to_identifier(r): r for r in found}


def _record_pairs(scoped: Session, merging: list[Identifier], rows: dict[Identifier, Identity]) -> bool:
    workspace_id = require_workspace(scoped)
    pairs = [
        {
            "id": new_id("ipr_"),
            "workspace_id": workspace_id,
            "identity_id": rows[v].id,
            "other_id": rows[w].id,
            "other_group": group_of(w),
        }
        for v in merging
        for w in merging
        if v != w
    ]
    if not pairs:
        return False
    stmt = (
        _insert(scoped)(IdentityPair)
        .on_conflict_do_nothing(index_elements=["workspace_id", "identity_id", "other_id"])
        .returning(IdentityPair.id)
    )
    return bool(scoped.execute(stmt, pairs).all())


def _newly_shared(
    scoped: Session, merging: list[Identifier], rows: dict[Identifier, Identity], rules: IdentityRules
) -> list[Identity]:

    shared = []
    for ident in merging:
        row, limit = rows[ident], rules.rule(ident.kind).shared_limit
        if row.shared or limit is None:
            continue
        counts = scoped.execute(
            select(IdentityPair.other_group, func.count())
            .where(IdentityPair.identity_id == row.id, IdentityPair.other_group != group_of(ident))
            .group_by(IdentityPair.other_group)
        ).all()
        if any(n > limit for _group, n in counts):
            shared.append(row)
    return shared


def _component(scoped: Session, seeds: set[str]) -> tuple[dict[str, Identity], set[tuple[str, str]]]:
    """Live (non-shared) identities reachable from ``seeds`` over pairs, and the pairs among them."""
    seen: set[str] = set()
    edges: set[tuple[str, str]] = set()
    frontier = set(seeds)
    while frontier and len(seen) < MAX_COMPONENT:
        seen |= frontier
        rows = scoped.execute(
            select(IdentityPair.identity_id, IdentityPair.other_id)
            .join(Identity, Identity.id == IdentityPair.other_id)
            .where(IdentityPair.identity_id.in_(frontier), Identity.shared.is_(False))
        ).all()
        nxt: set[str] = set()
        for a, b in rows:
            edges.add((a, b) if a < b else (b, a))
            if b not in seen:
                nxt.add(b)
        frontier = nxt
    nodes = {r.id: r for r in scoped.scalars(select(Identity).where(Identity.id.in_(seen), Identity.shared.is_(False)))}
    return nodes, {(a, b) for a, b in edges if a in nodes and b in nodes}


def observe(scoped: Session, identifiers: Iterable[Identifier], rules: IdentityRules = DEFAULT_RULES) -> Observed:
    """Record one observation and bring the people it touches up to date."""
    idents = sorted(set(identifiers), key=lambda i: sort_key(i, rules))
    if not idents:
        return Observed({}, None, None)
    rows = _upsert_identities(scoped, idents)
    merging = [i for i in idents if rules.rule(i.kind).merges]
    seeds: set[str] = set()
    if _record_pairs(scoped, merging, rows):
        for row in _newly_shared(scoped, merging, rows, rules):
            row.shared = True
            # Its old neighbours may now fall apart into several people.
            seeds |= set(scoped.scalars(select(IdentityPair.other_id).where(IdentityPair.identity_id == row.id)))
            seeds.add(row.id)
    live = [i for i in merging if not rows[i].shared]
    seeds |= {rows[i].id for i in live}
    new_ids: list[str] = []
    changes: list[ProfileChange] = []
    conflicts: list[Conflict] = []
    if seeds:
        scoped.flush()
        nodes, edges = _component(scoped, seeds)
        by_ident = {to_identifier(r): r for r in nodes.values()}
        links: list[Link] = [(to_identifier(nodes[a]), to_identifier(nodes[b])) for a, b in edges]
        people, conflicts = solve(by_ident.keys(), links, rules)
        new_ids, changes = _assign(scoped, people, by_ident)
        _record_conflicts(scoped, conflicts, by_ident)
        for row in rows.values():
            if row.shared and row.profile_id is not None:
                row.profile_id = None
    primary = rows[live[0]] if live else rows[idents[0]]
    return Observed(
        identity_ids={i: rows[i].id for i in idents},
        primary_identity_id=primary.id,
        profile_id=primary.profile_id,
        new_profile_ids=new_ids,
        changes=changes,
        conflicts=conflicts,
    )


def _assign(
    scoped: Session, people: list[frozenset[Identifier]], rows: dict[Identifier, Identity]
) -> tuple[list[str], list[ProfileChange]]:
    """Give each person the oldest free profile id among its identifiers (or a new one)."""
    taken: set[str] = set()
    survivors: list[str] = []
    new_ids: list[str] = []
    for person in people:
        existing = sorted({p for p in (rows[i].profile_id for i in person) if p and p not in taken})
        survivor = existing[0] if existing else new_id("pf_")
        if not existing:
            new_ids.append(survivor)
        taken.add(survivor)
        survivors.append(survivor)
    kept = set(survivors)
    changes: list[ProfileChange] = []
    now = utcnow()
    for person, survivor in zip(people, survivors, strict=True):
        moved: dict[str, Identity] = {}
        for ident in sorted(person):
            row = rows[ident]
            if row.profile_id != survivor:
                if row.profile_id is not None and row.profile_id not in moved:
                    moved[row.profile_id] = row
                row.profile_id = survivor
        for other, row in moved.items():
            action = "split" if other in kept else "merge"
            changes.append(ProfileChange(action, survivor, other, row.id, f"link:{row.kind}"))
            scoped.add(
                IdentityMerge(
                    action=action,
                    survivor_id=survivor,
                    other_id=other,
                    identity_id=row.id,
                    rule=f"link:{row.kind}",
                    at=now,
                )
            )
    return new_ids, changes


def _record_conflicts(scoped: Session, conflicts: list[Conflict], rows: dict[Identifier, Identity]) -> None:
    now = utcnow()
    for conflict in conflicts:
        left, right = rows[conflict.left].id, rows[conflict.right].id
        existing = scoped.scalar(
            select(IdentityConflict).where(IdentityConflict.left_id == left, IdentityConflict.right_id == right)
        )
        if existing is None:
            scoped.add(
                IdentityConflict(
                    left_id=left, right_id=right, reason=conflict.reason, first_seen_at=now, last_seen_at=now
                )
            )
        else:
            existing.times, existing.last_seen_at, existing.reason = existing.times + 1, now, conflict.reason


def stored_people(scoped: Session) -> set[frozenset[Identifier]]:
    """The current partition (for tests and the rebuild comparison)."""
    groups: dict[str, set[Identifier]] = {}
    for row in scoped.scalars(select(Identity).where(Identity.profile_id.is_not(None))):
        groups.setdefault(row.profile_id or "", set()).add(to_identifier(row))
    return {frozenset(g) for g in groups.values()}
