"""Incremental identity resolution, inside the caller's transaction (one per ingested event).

Each observation records which identifiers were seen together, then recomputes the one
candidate component it touches with ``partition.solve`` — the same function the batch rebuild
uses — so after any sequence of observations the stored people equal ``partition.resolve`` of
all of them. Profile ids stay stable: each person keeps the oldest profile id among its
identifiers; merges and splits are recorded in ``identity_merges``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.identity.contracts import KIND_OF, Identifier, IdentifierKind
from siyu.identity.partition import Conflict, Link, solve, sort_key
from siyu.identity.rules import IdentityRules
from siyu.identity.settings import workspace_rules
from siyu.identity.tables import Identity, IdentityConflict, IdentityConstraint, IdentityMerge, IdentityPair
from siyu.storage.bulk import append_rows, fetch_rows, update_rows
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


@dataclass(eq=False, slots=True)  # compared and hashed by identity: one per stored identifier
class Known:
    """The state of one stored identifier that resolution needs (lighter than the mapped row)."""

    id: str
    kind: str
    scope: str
    shared: bool
    profile_id: str | None


@dataclass(frozen=True)
class Resolved:
    primary_identity_ids: list[str | None]  # per observation: its strongest identifier
    identity_ids: dict[Identifier, str]
    profile_of: dict[str, str | None]  # identity id -> its profile after resolution
    new_profile_ids: list[str] = field(default_factory=list)
    changes: list[ProfileChange] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


@dataclass(frozen=True)
class Observed:
    identity_ids: dict[Identifier, str]
    primary_identity_id: str | None  # the strongest identifier: events and orders point at it
    profile_id: str | None
    new_profile_ids: list[str] = field(default_factory=list)
    changes: list[ProfileChange] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def group_of(ident: Identifier) -> str:
    return f"{ident.kind}|{ident.scope}"


def to_identifier(row: Identity | Node) -> Identifier:
    return Identifier(KIND_OF[row.kind], row.scope, row.value, row.weak)


# pg_advisory_xact_lock(class, object): the class says what the lock is for.
_RESOLUTION_LOCK_CLASS = 0x5159  # "SY"
_TURN_TAKEN_IN = "siyu_resolution_turn"  # session.info: the transaction that holds the turn


def take_resolution_turn(scoped: Session) -> None:
    """Transactions that resolve identities of one workspace take turns, until commit: each must
    see the graph as the last one left it, or two could each miss the other's links. SQLite's
    writers take turns already; PostgreSQL's take this transaction-scoped advisory lock."""
    if scoped.get_bind().dialect.name != "postgresql":
        return
    transaction = scoped.get_transaction()
    if transaction is not None and scoped.info.get(_TURN_TAKEN_IN) is transaction:
        return  # held until this transaction ends: asking again would cost a round trip
    workspace = int.from_bytes(
        hashlib.blake2b(require_workspace(scoped).encode(), digest_size=4).digest(), "big", signed=True
    )
    # Through the driver: an ORM statement would cost more than the round trip.
    scoped.connection().exec_driver_sql("SELECT pg_advisory_xact_lock(%s, %s)", (_RESOLUTION_LOCK_CLASS, workspace))
    if scoped.get_nested_transaction() is None:  # a savepoint rolled back would release it
        scoped.info[_TURN_TAKEN_IN] = scoped.get_transaction()


def holds_resolution_turn(scoped: Session) -> bool:
    """Whether this transaction may change the graph now (on SQLite, any writing transaction)."""
    if scoped.get_bind().dialect.name != "postgresql":
        return True
    transaction = scoped.get_transaction()
    return transaction is not None and scoped.info.get(_TURN_TAKEN_IN) is transaction


def _identities(scoped: Session, idents: list[Identifier]) -> tuple[dict[Identifier, Known], dict[Identifier, Known]]:
    """State of the identifiers (one SELECT), and of those among them never seen, with ids given
    here: :func:`_store_new` stores them once resolution knows their person, so that each is
    written once."""
    rows = _stored_identities(scoped, idents)
    fresh = {i: Known(new_id("idn_"), i.kind.value, i.scope, False, None) for i in idents if i not in rows}
    return rows | fresh, fresh


def _store_new(scoped: Session, fresh: dict[Identifier, Known], profile_of: dict[str, str | None]) -> None:
    now = utcnow()
    rows = [(k.id, k.kind, k.scope, i.value, i.weak, k.shared, profile_of.get(k.id), now) for i, k in fresh.items()]
    inserted = append_rows(
        scoped,
        Identity,
        ("id", "kind", "scope", "value", "weak", "shared", "profile_id", "first_seen_at"),
        rows,
        on_conflict=("workspace_id", "kind", "scope", "value"),
    )
    if inserted < len(rows):  # identities are stored under the resolution turn only
        raise RuntimeError("an identifier was stored meanwhile without the resolution turn; try again")


def _stored_identities(scoped: Session, wanted: list[Identifier]) -> dict[Identifier, Known]:
    # By value (index on workspace_id, value), then exactly by kind and scope.
    keys = {(i.kind, i.scope, i.value): i for i in wanted}  # a kind equals its stored text
    found = fetch_rows(
        scoped,
        Identity,
        ("id", "kind", "scope", "value", "shared", "profile_id"),
        "value",
        (i.value for i in wanted),
    )
    return {
        keys[(kind, scope, value)]: Known(id_, kind, scope, shared, profile_id)
        for id_, kind, scope, value, shared, profile_id in found
        if (kind, scope, value) in keys
    }


Adjacency = dict[str, list[tuple[str, str]]]  # identity id -> (other id, other's group), all of them


def _record_pairs(scoped: Session, pairs: set[tuple[Known, Known]], new_ids: set[str]) -> tuple[set[str], Adjacency]:
    """Store identifiers seen together (both directions). Returns the ids that gained a pair, and
    every stored pair of the identifiers on the left and of the ``new_ids`` (identities not stored
    yet, so with no pairs but these), as later steps need them."""
    adjacency: Adjacency = {id_: [] for id_ in [*new_ids, *(v.id for v, _w in pairs)]}
    if not pairs:
        return set(), adjacency
    existing: set[tuple[str, str]] = set()
    stored = [id_ for id_ in adjacency if id_ not in new_ids]
    for identity_id, other_id, other_group in fetch_rows(
        scoped, IdentityPair, ("identity_id", "other_id", "other_group"), "identity_id", stored
    ):
        adjacency[identity_id].append((other_id, other_group))
        existing.add((identity_id, other_id))
    fresh = [(v, w) for v, w in pairs if (v.id, w.id) not in existing]
    if not fresh:
        return set(), adjacency
    rows = [(new_id("ipr_"), v.id, w.id, group_of_known(w)) for v, w in fresh]
    inserted = append_rows(
        scoped,
        IdentityPair,
        ("id", "identity_id", "other_id", "other_group"),
        rows,
        on_conflict=("workspace_id", "identity_id", "other_id"),
    )
    if inserted == len(rows):
        for _id, v_id, w_id, w_group in rows:
            adjacency[v_id].append((w_id, w_group))
    else:  # under PostgreSQL a concurrent transaction stored some first: read them all again
        adjacency = {v_id: [] for v_id in adjacency}
        for identity_id, other_id, other_group in fetch_rows(
            scoped, IdentityPair, ("identity_id", "other_id", "other_group"), "identity_id", adjacency
        ):
            adjacency[identity_id].append((other_id, other_group))
    return {v.id for v, _w in fresh}, adjacency


def group_of_known(row: Known) -> str:
    return f"{row.kind}|{row.scope}"


def _newly_shared(candidates: list[Known], rules: IdentityRules, adjacency: Adjacency) -> list[Known]:
    """Which of the candidates are now seen with more than their kind's shared limit of distinct
    values of any one other kind (their pairs are all in ``adjacency``)."""
    over = []
    for row in candidates:
        limit = None if row.shared else rules.rule(KIND_OF[row.kind]).shared_limit
        if limit is None:
            continue
        own = group_of_known(row)
        counts = Counter(group for _other, group in adjacency[row.id] if group != own)
        if counts and max(counts.values()) > limit:
            over.append(row)
    return over


@dataclass(eq=False, slots=True)
class Node:
    """An identifier of a component being re-solved (lighter than the mapped row)."""

    id: str
    kind: str
    scope: str
    value: str
    weak: bool
    profile_id: str | None


class _Constraint(NamedTuple):
    id: str
    kind: str  # must | cannot
    left_id: str
    right_id: str


_CONSTRAINT_COLUMNS = ("id", "kind", "left_id", "right_id")


def _component(
    scoped: Session,
    seeds: set[str],
    known: Adjacency,
    given: dict[str, Node] | None = None,
    unstored: set[str] | None = None,
) -> tuple[dict[str, Node], set[tuple[str, str]], list[_Constraint]]:
    """Live (non-shared) identities reachable from ``seeds`` over pairs and operators' must-links,
    the pairs among them, and the constraints that concern them. Read by key through the driver:
    this runs for every event that links someone new; the pairs of ``known`` identities and the
    ``given`` live identities (read in this turn already) are not read again, nor constraints of
    ``unstored`` identities (new in this turn: operators have not seen them)."""
    nodes: dict[str, Node] = dict(given or {})

    def read(ids: Iterable[str]) -> None:
        for id_, kind, scope, value, weak, is_shared, profile_id in fetch_rows(
            scoped, Identity, ("id", "kind", "scope", "value", "weak", "shared", "profile_id"), "id", ids
        ):
            if is_shared:
                shared.add(id_)
            else:
                nodes[id_] = Node(id_, kind, scope, value, weak, profile_id)

    seen: set[str] = set()
    edges: set[tuple[str, str]] = set()
    constraints: dict[str, _Constraint] = {}
    checked: set[str] = set(unstored or ())  # identities whose constraints were read
    shared: set[str] = set()
    frontier = set(seeds)
    while frontier and len(seen) < MAX_COMPONENT:
        # Over pairs first, level by level; then the constraints of everything reached at once
        # (operators' must-links are rare: usually one query finds none and the walk is done).
        while frontier and len(seen) < MAX_COMPONENT:
            seen |= frontier
            rows = [(a, b) for a in frontier if a in known for b, _group in known[a]]
            unknown = [a for a in frontier if a not in known]
            if unknown:
                rows += fetch_rows(scoped, IdentityPair, ("identity_id", "other_id"), "identity_id", unknown)
            reached = {b for _a, b in rows} - seen - shared
            read(i for i in reached if i not in nodes)
            nxt: set[str] = set()
            for a, b in rows:
                if b in shared:
                    continue  # a shared value links nobody
                edges.add((a, b) if a < b else (b, a))
                if b not in seen:
                    nxt.add(b)
            frontier = nxt
        unchecked = seen - checked
        checked |= unchecked
        found = (
            fetch_rows(scoped, IdentityConstraint, _CONSTRAINT_COLUMNS, ("left_id", "right_id"), unchecked)
            if unchecked
            else []
        )
        for c in map(_Constraint._make, found):
            constraints[c.id] = c
            if c.kind == "must":
                frontier |= {c.left_id, c.right_id} - seen
    read(i for i in seen if i not in nodes and i not in shared)  # the seeds and must-linked, if not given
    nodes = {id_: node for id_, node in nodes.items() if id_ in seen}
    kept = [c for c in constraints.values() if c.left_id in nodes and c.right_id in nodes]
    return nodes, {(a, b) for a, b in edges if a in nodes and b in nodes}, kept


def _recompute(
    scoped: Session,
    seeds: set[str],
    rules: IdentityRules,
    label: str = "link",
    claimed: set[str] | None = None,
    known: Adjacency | None = None,
    given: dict[str, Node] | None = None,
    unstored: set[str] | None = None,
) -> tuple[list[str], list[ProfileChange], list[Conflict], dict[str, Node]]:
    """Re-solve the candidate component around ``seeds`` and store the people it yields
    (``known``: identities whose pairs were just read; ``given``: live identities just read;
    ``unstored``: given identities not stored yet, which the caller stores as solved, and then
    records the conflicts)."""
    take_resolution_turn(scoped)
    scoped.flush()
    nodes, edges, constraints = _component(scoped, seeds, known or {}, given, unstored or set())
    by_ident = {to_identifier(r): r for r in nodes.values()}
    links: list[Link] = [(to_identifier(nodes[a]), to_identifier(nodes[b])) for a, b in edges]
    must = [
        (to_identifier(nodes[c.left_id]), to_identifier(nodes[c.right_id])) for c in constraints if c.kind == "must"
    ]
    cannot = [
        (to_identifier(nodes[c.left_id]), to_identifier(nodes[c.right_id])) for c in constraints if c.kind == "cannot"
    ]
    people, conflicts = solve(by_ident.keys(), links, rules, must, cannot)
    new_ids, changes = _assign(
        scoped, people, by_ident, label, claimed if claimed is not None else set(), unstored or set()
    )
    if not unstored:
        _record_conflicts(scoped, conflicts, by_ident)
    return new_ids, changes, conflicts, nodes


def resolve_again(
    scoped: Session, identity_ids: set[str], rules: IdentityRules | None = None
) -> tuple[list[str], list[ProfileChange]]:
    """Re-solve the components holding these identifiers and store their people (the repair
    step of a full rebuild); changes are audited under the rule ``rebuild:<kind>``."""
    rules = rules or workspace_rules(scoped)
    new_ids: list[str] = []
    changes: list[ProfileChange] = []
    remaining = set(identity_ids)
    claimed: set[str] = set()  # a profile id goes to one person only, across components
    while remaining:  # one component at a time: each stays within the component size limit
        seed = min(remaining)
        fresh, changed, _conflicts, nodes = _recompute(scoped, {seed}, rules, "rebuild", claimed)
        new_ids += fresh
        changes += changed
        remaining -= {seed, *nodes}
    return new_ids, changes


def observe_many(
    scoped: Session,
    observations: Sequence[Iterable[Identifier]],
    rules: IdentityRules | None = None,
    subjects: Sequence[Identifier | None] | None = None,
) -> Resolved:
    """Record observations and bring the people they touch up to date, in one pass.

    The result is the same as observing them one by one (the partition does not depend on
    order); known people seen again with nothing new cost a single SELECT. Each observation's
    primary identifier is its ``subject`` when given (the userId or anonymousId an event was sent
    as), else its strongest identifier.
    """
    rules = rules or workspace_rules(scoped)
    observed = [list(dict.fromkeys(o)) for o in observations]
    everyone = list(dict.fromkeys(i for o in observed for i in o))
    if not everyone:
        return Resolved([None] * len(observed), {}, {})
    take_resolution_turn(scoped)
    rows, fresh = _identities(scoped, everyone)
    new_ids = {r.id for r in fresh.values()}
    merging_kinds = {kind for kind, rule in rules.kinds.items() if rule.merges}
    gained, adjacency = _record_pairs(scoped, _pairs(observed, rows, merging_kinds), new_ids)
    seeds: set[str] = set(gained)
    shared = _newly_shared([r for r in rows.values() if r.id in gained], rules, adjacency)
    if shared:
        ids = [r.id for r in shared if r.id not in new_ids]
        if ids:
            scoped.execute(
                update(Identity).where(Identity.id.in_(ids)).values(shared=True, profile_id=None),
                execution_options={"synchronize_session": "fetch"},
            )
        for row in shared:
            row.shared, row.profile_id = True, None
        # Their old neighbours may now fall apart into several people.
        seeds |= {other for i in ids for other, _group in adjacency[i]}
    seeds |= {r.id for i, r in rows.items() if r.profile_id is None and not r.shared and i.kind in merging_kinds}
    new_profile_ids: list[str] = []
    changes: list[ProfileChange] = []
    conflicts: list[Conflict] = []
    profile_of = {r.id: r.profile_id for r in rows.values()}
    if seeds:
        given = {
            r.id: Node(r.id, r.kind, r.scope, i.value, i.weak, r.profile_id) for i, r in rows.items() if not r.shared
        }
        new_profile_ids, changes, conflicts, nodes = _recompute(
            scoped, seeds, rules, known=adjacency, given=given, unstored=new_ids
        )
        profile_of |= {n.id: n.profile_id for n in nodes.values() if n.id in profile_of}
    if fresh:
        _store_new(scoped, fresh, profile_of)
        if conflicts:
            _record_conflicts(scoped, conflicts, {to_identifier(n): n for n in nodes.values()})
    primaries = _primaries(observed, rows, rules, merging_kinds, subjects)
    return Resolved(primaries, {i: r.id for i, r in rows.items()}, profile_of, new_profile_ids, changes, conflicts)


def resolve_seen(
    scoped: Session,
    observations: Sequence[Iterable[Identifier]],
    rules: IdentityRules | None = None,
    subjects: Sequence[Identifier | None] | None = None,
) -> Resolved | None:
    """As :func:`observe_many` for observations that teach the graph nothing: every identifier is
    stored (a live one on a person) and every pair among them too. Such observations need not wait
    for the resolution turn, so this only reads, without it; None when they would change the graph
    (then observe them with :func:`observe_many`, which takes the turn).

    Recording them would change nothing, whatever other transactions are doing: the graph only
    ever gains identifiers and pairs. The profiles read may be merged away by a transaction that
    holds the turn meanwhile; identity ids stay.
    """
    rules = rules or workspace_rules(scoped)
    observed = [list(dict.fromkeys(o)) for o in observations]
    everyone = list(dict.fromkeys(i for o in observed for i in o))
    if not everyone:
        return Resolved([None] * len(observed), {}, {})
    rows = _stored_identities(scoped, everyone)
    merging_kinds = {kind for kind, rule in rules.kinds.items() if rule.merges}
    if len(rows) < len(everyone) or any(
        r.profile_id is None and not r.shared and i.kind in merging_kinds for i, r in rows.items()
    ):
        return None
    pairs = {(v.id, w.id) for v, w in _pairs(observed, rows, merging_kinds)}
    if pairs:
        left = {v for v, _w in pairs}
        stored = set(fetch_rows(scoped, IdentityPair, ("identity_id", "other_id"), "identity_id", left))
        if not pairs <= stored:
            return None
    primaries = _primaries(observed, rows, rules, merging_kinds, subjects)
    return Resolved(primaries, {i: r.id for i, r in rows.items()}, {r.id: r.profile_id for r in rows.values()})


def current_profiles(scoped: Session, identity_ids: Iterable[str]) -> dict[str, str | None]:
    """The profile each identifier is on now."""
    return dict(fetch_rows(scoped, Identity, ("id", "profile_id"), "id", identity_ids))


def _pairs(
    observed: list[list[Identifier]], rows: dict[Identifier, Known], merging_kinds: set[IdentifierKind]
) -> set[tuple[Known, Known]]:
    """Merging identifiers seen together, both ways."""
    return {
        (rows[v], rows[w])
        for o in observed
        if len(o) > 1
        for v in o
        if v.kind in merging_kinds
        for w in o
        if w != v and w.kind in merging_kinds
    }


def _primaries(
    observed: list[list[Identifier]],
    rows: dict[Identifier, Known],
    rules: IdentityRules,
    merging_kinds: set[IdentifierKind],
    subjects: Sequence[Identifier | None] | None,
) -> list[str | None]:
    primaries: list[str | None] = []
    for n, o in enumerate(observed):
        subject = subjects[n] if subjects else None
        if subject is not None and subject in rows and not rows[subject].shared:
            primaries.append(rows[subject].id)
            continue
        if not o:
            primaries.append(None)
            continue
        live = [i for i in o if i.kind in merging_kinds and not rows[i].shared]
        primaries.append(rows[min(live or o, key=lambda i: sort_key(i, rules))].id)
    return primaries


def observe(scoped: Session, identifiers: Iterable[Identifier], rules: IdentityRules | None = None) -> Observed:
    """Record one observation (see :func:`observe_many`)."""
    rules = rules or workspace_rules(scoped)
    resolved = observe_many(scoped, [identifiers], rules)
    primary = resolved.primary_identity_ids[0]
    return Observed(
        identity_ids=resolved.identity_ids,
        primary_identity_id=primary,
        profile_id=resolved.profile_of.get(primary) if primary else None,
        new_profile_ids=resolved.new_profile_ids,
        changes=resolved.changes,
        conflicts=resolved.conflicts,
    )


def _assign(
    scoped: Session,
    people: list[frozenset[Identifier]],
    rows: dict[Identifier, Node],
    label: str,
    taken: set[str],
    unstored: set[str],
) -> tuple[list[str], list[ProfileChange]]:
    """Give each person the oldest free profile id among its identifiers (or a new one); ids in
    ``taken`` are not free, and the ids given are added to it. Identities in ``unstored`` only
    change in memory: the caller stores them."""
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
    moves: list[tuple[str, str]] = []
    for person, survivor in zip(people, survivors, strict=True):
        moved: dict[str, Node] = {}
        for ident in sorted(person):
            row = rows[ident]
            if row.profile_id != survivor:
                if row.profile_id is not None and row.profile_id not in moved:
                    moved[row.profile_id] = row
                row.profile_id = survivor
                if row.id not in unstored:
                    moves.append((row.id, survivor))
        for other, row in moved.items():
            action = "split" if other in kept else "merge"
            changes.append(ProfileChange(action, survivor, other, row.id, f"{label}:{row.kind}"))
    update_rows(scoped, Identity, ("profile_id",), moves)
    now = utcnow()
    append_rows(
        scoped,
        IdentityMerge,
        ("id", "action", "survivor_id", "other_id", "identity_id", "rule", "details", "at"),
        [(new_id("img_"), c.action, c.survivor_id, c.other_id, c.identity_id, c.rule, {}, now) for c in changes],
        on_conflict=("id",),
    )
    return new_ids, changes


def _record_conflicts(scoped: Session, conflicts: list[Conflict], rows: dict[Identifier, Node]) -> None:
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
