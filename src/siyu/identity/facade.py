"""Identity facade."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session

from siyu.core.ids import new_id
from siyu.identity.contracts import KIND_OF, Identifier
from siyu.identity.tables import Identity, IdentityMerge, IdentityPair
from siyu.storage.bulk import append_rows, fetch_rows
from siyu.storage.scoping import require_workspace


def count_identities(scoped: Session) -> int:
    return int(scoped.scalar(select(func.count()).select_from(Identity)) or 0)


def identity_exists(scoped: Session, ident: Identifier) -> bool:
    return (
        scoped.scalar(
            select(Identity.id).where(
                Identity.kind == ident.kind.value, Identity.scope == ident.scope, Identity.value == ident.value
            )
        )
        is not None
    )


def insert_identity_rows(scoped: Session, rows: Sequence[dict[str, Any]]) -> None:
    workspace_id = require_workspace(scoped)
    scoped.execute(insert(Identity), [{**r, "workspace_id": workspace_id} for r in rows])


def link_identity_rows(scoped: Session, people: Sequence[Sequence[dict[str, Any]]]) -> int:
    """Record that the (merging) identity rows of each group were seen together, as resolution
    would have: the loader path for people known up front. Returns how many pairs were stored."""
    rows = [
        (new_id("ipr_"), a["id"], b["id"], f"{b['kind']}|{b['scope']}")
        for group in people
        for a in group
        for b in group
        if a["id"] != b["id"] and not a["weak"] and not b["weak"]
    ]
    return append_rows(
        scoped, IdentityPair, ("id", "identity_id", "other_id", "other_group"), rows, on_conflict=("id",)
    )


@dataclass(frozen=True)
class IdentityPublic:
    id: str
    kind: str
    scope: str
    value: str
    weak: bool
    shared: bool
    first_seen_at: datetime


@dataclass(frozen=True)
class MergePublic:
    id: str
    action: str
    survivor_id: str
    other_id: str
    identity_id: str | None
    rule: str
    at: datetime


def identities_of_profile(scoped: Session, profile_id: str) -> list[IdentityPublic]:
    rows = scoped.scalars(
        select(Identity).where(Identity.profile_id == profile_id).order_by(Identity.kind, Identity.value)
    )
    return [IdentityPublic(r.id, r.kind, r.scope, r.value, r.weak, r.shared, r.first_seen_at) for r in rows]


def identities_of_profiles(
    scoped: Session, profile_ids: Iterable[str], kinds: Sequence[str]
) -> list[tuple[str, str, str, str, str]]:
    """(profile_id, identity_id, kind, scope, value) of these people's own identifiers of
    ``kinds`` (neither weak nor shared), read in bulk."""
    wanted = set(kinds)
    rows = fetch_rows(
        scoped, Identity, ("profile_id", "id", "kind", "scope", "value", "weak", "shared"), "profile_id", profile_ids
    )
    return [(p, i, k, sc, v) for p, i, k, sc, v, weak, shared in rows if k in wanted and not weak and not shared]


def owners_of(scoped: Session, idents: Sequence[Identifier]) -> dict[Identifier, str]:
    """The person each identifier belongs to, for those that belong to someone (read in bulk)."""
    wanted = set(idents)
    rows = fetch_rows(scoped, Identity, ("kind", "scope", "value", "profile_id"), "value", {i.value for i in wanted})
    out: dict[Identifier, str] = {}
    for kind, scope, value, profile_id in rows:
        ident = next(
            (i for i in (Identifier(KIND_OF[kind], scope, value, w) for w in (False, True)) if i in wanted), None
        )
        if ident is not None and profile_id:
            out[ident] = profile_id
    return out


def speaking_identities(scoped: Session, profile_ids: Sequence[str]) -> dict[str, str]:
    """For each person, the identifier events siyu derives about them are recorded under: their
    smallest own (neither weak nor shared) identifier id, as the batch run picks it."""
    rows = fetch_rows(scoped, Identity, ("profile_id", "id", "weak", "shared"), "profile_id", set(profile_ids))
    out: dict[str, str] = {}
    for profile_id, identity_id, weak, shared in rows:
        if not weak and not shared and (profile_id not in out or identity_id < out[profile_id]):
            out[profile_id] = identity_id
    return out


def identities_with_values(scoped: Session, kind: str, values: Iterable[str]) -> list[tuple[str, str, str | None]]:
    """(value, identity_id, profile_id) of the identifiers of ``kind`` with these (normalised)
    values, in any scope, read in bulk."""
    rows = fetch_rows(scoped, Identity, ("value", "id", "profile_id", "kind"), "value", set(values))
    return [(v, i, p) for v, i, p, k in rows if k == kind]


def profiles_with_value(scoped: Session, values: Sequence[str]) -> list[str]:
    """Profiles holding any identifier with one of these (already normalised) values."""
    rows = scoped.scalars(
        select(Identity.profile_id).where(Identity.value.in_(list(values)), Identity.profile_id.is_not(None))
    )
    return sorted({r for r in rows if r})


def merge_history(scoped: Session, profile_id: str) -> list[MergePublic]:
    rows = scoped.scalars(
        select(IdentityMerge)
        .where(or_(IdentityMerge.survivor_id == profile_id, IdentityMerge.other_id == profile_id))
        .order_by(IdentityMerge.at.desc())
    )
    return [MergePublic(r.id, r.action, r.survivor_id, r.other_id, r.identity_id, r.rule, r.at) for r in rows]
