"""Profiles facade: counts, bulk loads, and keeping profile rows in step with identity outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError
from siyu.core.pagination import Page
from siyu.identity.contracts import IdentifierKind
from siyu.identity.errors import InvalidIdentifierError
from siyu.identity.facade import identities_of_profiles, profiles_with_value
from siyu.identity.normalise import normalise
from siyu.identity.resolver import ProfileChange
from siyu.profiles import consent
from siyu.profiles.masking import mask_email, mask_mapping, mask_name, mask_phone
from siyu.profiles.tables import Profile, ProfileTag
from siyu.profiles.tagging import (
    HeldTag,
    drop_tag,
    existing_profiles,
    move_tags,
    put_tag,
    revalue_tag,
    tags_of,
    take_tag,
)
from siyu.profiles.traits import StoredProfile, refolded
from siyu.storage import jsontext
from siyu.storage.bulk import append_rows, fetch_rows, update_rows
from siyu.storage.keyed import keyed_rows
from siyu.storage.paging import newest_first
from siyu.storage.scoping import require_workspace

__all__ = ["HeldTag", "drop_tag", "existing_profiles", "put_tag", "revalue_tag", "tags_of", "take_tag"]


granted_consents = consent.granted


def count_profiles(scoped: Session) -> int:
    return int(scoped.scalar(select(func.count()).select_from(Profile)) or 0)


def insert_profile_rows(scoped: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk insert prepared rows into the session's workspace (the loader path)."""
    workspace_id = require_workspace(scoped)
    scoped.execute(insert(Profile), [{**r, "workspace_id": workspace_id} for r in rows])


def apply_identity_outcome(scoped: Session, new_profile_ids: Sequence[str], changes: Sequence[ProfileChange]) -> None:
    """Create the profiles identity resolution minted and fold merged ones into their survivor.

    A merged profile's traits fill the survivor's gaps (the survivor's values win until trait
    precedence rules arrive); its first/last seen widen the survivor's.
    """
    if not new_profile_ids and not changes:
        return
    now = utcnow()
    if new_profile_ids:
        append_rows(
            scoped,
            Profile,
            ("id", "traits", "trait_sources", "first_seen_at", "last_seen_at", "created_at", "updated_at"),
            [(profile_id, {}, {}, now, now, now, now) for profile_id in new_profile_ids],
            on_conflict=("id",),
        )
    _fold_and_refold(scoped, changes)


def _fold_and_refold(scoped: Session, changes: Sequence[ProfileChange]) -> None:
    """Each merged profile fills its survivor's gaps and widens its seen times, then goes; the
    survivors, and profiles split from, are then refolded from their identifiers' observations.
    Read and written in bulk, each profile once (identify calls merge visitors into members all
    day long)."""
    if not changes:
        return
    merges = [c for c in changes if c.action == "merge"]
    touched = sorted({c.survivor_id for c in changes} | {c.other_id for c in changes if c.action == "split"})
    columns = ("id", "traits", "trait_sources", "display_name", "first_seen_at", "last_seen_at")
    wanted = {*touched, *(c.other_id for c in merges)}
    read = {row[0]: tuple(row[1:]) for row in fetch_rows(scoped, Profile, columns, "id", wanted)}
    state = {profile_id: list(row) for profile_id, row in read.items()}
    gone: list[str] = []
    for change in merges:  # in order: a survivor may absorb several profiles
        survivor, other = state.get(change.survivor_id), state.get(change.other_id)
        if survivor is None or other is None:
            continue
        traits, sources, name, first, last = survivor
        other_traits, _other_sources, other_name, other_first, other_last = other
        survivor[:] = [
            {**(other_traits or {}), **(traits or {})},
            sources,
            name or other_name,
            min(first, other_first),
            max(last, other_last),
        ]
        del state[change.other_id]
        gone.append(change.other_id)
    kept = [StoredProfile(p, *state[p][:3]) for p in touched if p in state]
    for profile in refolded(scoped, kept):
        state[profile.id][:3] = [profile.traits, profile.trait_sources, profile.display_name]
    now = utcnow()
    update_rows(
        scoped,
        Profile,
        ("traits", "trait_sources", "display_name", "first_seen_at", "last_seen_at", "updated_at"),
        [(p, *state[p], now) for p in touched if p in state and tuple(state[p]) != read[p]],
    )
    if gone:
        move_tags(scoped, [(c.survivor_id, c.other_id) for c in merges if c.other_id in gone])
        for obj in list(scoped.identity_map.values()):
            if isinstance(obj, Profile) and obj.id in gone:
                scoped.expunge(obj)
        scoped.execute(delete(Profile).where(Profile.id.in_(gone)), execution_options={"synchronize_session": False})


@dataclass(frozen=True)
class ProfileSummary:
    id: str
    display_name: str | None
    traits: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime


def _summary(row: Profile, mask: bool) -> ProfileSummary:
    name = row.display_name
    traits = dict(row.traits or {})
    if mask:
        name = mask_name(name) if name else name
        traits = mask_mapping(traits)
    return ProfileSummary(row.id, name, traits, row.first_seen_at, row.last_seen_at)


def search_values(query: str) -> list[str]:
    """The normalised forms a search box entry may stand for (phone, email, or as typed)."""
    forms = {query.strip()}
    for kind in (IdentifierKind.PHONE, IdentifierKind.EMAIL, IdentifierKind.MEMBER_NO):
        try:
            forms.add(normalise(kind, query).value)
        except InvalidIdentifierError:
            continue
    return sorted(f for f in forms if f)


def list_profiles(
    scoped: Session, *, mask: bool, query: str | None = None, cursor: str | None = None, limit: int = 50
) -> Page[ProfileSummary]:
    """Newest first; ``query`` finds people by any identifier (phone, email, user id, openid…)."""
    stmt = select(Profile)
    if query:
        stmt = stmt.where(Profile.id.in_(profiles_with_value(scoped, search_values(query))))
    return newest_first(scoped, stmt, Profile.id, cursor=cursor, limit=limit, convert=lambda r: _summary(r, mask))


def profile_summaries(scoped: Session, profile_ids: Sequence[str], *, mask: bool) -> list[ProfileSummary]:
    """The people of ``profile_ids`` that exist, in that order (at most a page's worth)."""
    if len(profile_ids) > 500:
        raise ValueError("at most 500 people at a time")
    rows = {r.id: r for r in scoped.scalars(select(Profile).where(Profile.id.in_(list(profile_ids))))}
    return [_summary(rows[p], mask) for p in profile_ids if p in rows]


@dataclass(frozen=True)
class Contact:
    """How to reach a person, as an export lists them (masked unless the reader may see it)."""

    display_name: str
    phones: list[str]
    emails: list[str]


def contacts(scoped: Session, profile_ids: Sequence[str], *, mask: bool) -> dict[str, Contact]:
    """Name, phones and emails of each of these people, read in bulk."""
    names = dict(fetch_rows(scoped, Profile, ("id", "display_name"), "id", profile_ids))
    phones: dict[str, list[str]] = {}
    emails: dict[str, list[str]] = {}
    for profile_id, _, kind, _, value in identities_of_profiles(scoped, profile_ids, ["phone", "email"]):
        if kind == "phone":
            phones.setdefault(profile_id, []).append(mask_phone(value) if mask else value)
        else:
            emails.setdefault(profile_id, []).append(mask_email(value) if mask else value)
    out = {}
    for profile_id, name in names.items():
        shown = (mask_name(name) if mask else name) if name else ""
        out[profile_id] = Contact(shown, sorted(phones.get(profile_id, [])), sorted(emails.get(profile_id, [])))
    return out


_TRAITS = """
SELECT p.id, p.display_name, p.traits FROM keys CROSS JOIN profiles p ON p.id = keys.key WHERE {workspace:p}
"""


def profile_traits(scoped: Session, profile_ids: Sequence[str]) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """Display name and current traits of each of these people that exists, read in bulk (each
    person's traits are their own dict)."""
    rows = keyed_rows(scoped, _TRAITS, profile_ids)
    if scoped.get_bind().dialect.name == "postgresql":  # psycopg parses JSON itself
        return {pid: (name, traits or {}) for pid, name, traits in rows}
    return {pid: (name, jsontext.loads(traits) if traits else {}) for pid, name, traits in rows}


_TRAITS_IN_ORDER = """
SELECT p.display_name, p.traits
FROM keys LEFT JOIN profiles p ON p.id = keys.key AND {workspace:p}
ORDER BY keys.n
"""


def traits_in_order(scoped: Session, profile_ids: Sequence[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Display names ("" for none) and traits ({} for none, and for whoever does not exist) of
    these people, in their order: read in bulk without their ids, a third less to read."""
    rows = keyed_rows(scoped, _TRAITS_IN_ORDER, profile_ids)
    names = [name or "" for name, _traits in rows]
    if scoped.get_bind().dialect.name == "postgresql":  # psycopg parses JSON itself
        return names, [traits or {} for _name, traits in rows]
    return names, [jsontext.loads(traits) if traits else {} for _name, traits in rows]


def profile_tag_ids(scoped: Session, profile_ids: Sequence[str]) -> dict[str, list[str]]:
    """The tags each of these people holds, read in bulk."""
    out: dict[str, list[str]] = {}
    for profile_id, tag_id in fetch_rows(scoped, ProfileTag, ("profile_id", "tag_id"), "profile_id", profile_ids):
        out.setdefault(profile_id, []).append(tag_id)
    return out


def get_profile(scoped: Session, profile_id: str, *, mask: bool) -> ProfileSummary:
    row = scoped.scalar(select(Profile).where(Profile.id == profile_id))
    if row is None:
        raise NotFoundError("profile not found")
    return _summary(row, mask)
