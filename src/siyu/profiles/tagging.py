"""The tags people have, as rows of ``profile_tags``: put on and taken off in bulk, carried to the
survivor when profiles merge. What a tag means (its library entry, its rule) is the tags
domain's; this module only keeps who has which."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.profiles.tables import Profile, ProfileTag
from siyu.storage.bulk import append_rows, fetch_rows

CHUNK = 5_000


@dataclass(frozen=True)
class HeldTag:
    tag_id: str
    value: str
    source: str
    added_at: datetime
    added_by: str | None


def tags_of(scoped: Session, profile_id: str) -> list[HeldTag]:
    rows = scoped.execute(
        select(ProfileTag.tag_id, ProfileTag.value, ProfileTag.source, ProfileTag.added_at, ProfileTag.added_by)
        .where(ProfileTag.profile_id == profile_id)
        .order_by(ProfileTag.added_at)
    )
    return [HeldTag(*row) for row in rows]


def existing_profiles(scoped: Session, profile_ids: Iterable[str]) -> set[str]:
    """Which of ``profile_ids`` are people of the workspace."""
    return {row[0] for row in fetch_rows(scoped, Profile, ("id",), "id", set(profile_ids))}


def put_tag(
    scoped: Session,
    tag_id: str,
    members: Sequence[tuple[str, str]],
    source: str,
    actor_id: str | None = None,
    *,
    none_have_it: bool = False,
) -> list[str]:
    """Give the tag to each (profile_id, value) who does not have it yet; returns who got it.
    ``none_have_it``: the caller knows none of them has it (the check is skipped)."""
    if not members:
        return []
    ids = [m[0] for m in members]
    having: set[str] = set()
    for start in range(0 if not none_have_it else len(ids), len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        having |= set(
            scoped.scalars(
                select(ProfileTag.profile_id).where(ProfileTag.tag_id == tag_id, ProfileTag.profile_id.in_(chunk))
            )
        )
    now = utcnow()
    new = [(tag_id, p, value, source, now, actor_id) for p, value in dict(members).items() if p not in having]
    append_rows(
        scoped,
        ProfileTag,
        ("tag_id", "profile_id", "value", "source", "added_at", "added_by"),
        new,
        on_conflict=("tag_id", "profile_id"),
    )
    return [row[1] for row in new]


def take_tag(scoped: Session, tag_id: str, profile_ids: Sequence[str]) -> list[str]:
    """Take the tag off each of ``profile_ids`` who has it; returns who lost it."""
    gone: list[str] = []
    for start in range(0, len(profile_ids), CHUNK):
        chunk = list(profile_ids[start : start + CHUNK])
        held = list(
            scoped.scalars(
                select(ProfileTag.profile_id).where(ProfileTag.tag_id == tag_id, ProfileTag.profile_id.in_(chunk))
            )
        )
        if held:
            scoped.execute(
                delete(ProfileTag).where(ProfileTag.tag_id == tag_id, ProfileTag.profile_id.in_(held)),
                execution_options={"synchronize_session": False},
            )
        gone += held
    return gone


def revalue_tag(scoped: Session, tag_id: str, values: Sequence[tuple[str, str]], source: str) -> None:
    """Set a computed tag's value for each (profile_id, value) who has it: taken off and put on
    again with the new value, in bulk."""
    if not values:
        return
    take_tag(scoped, tag_id, [p for p, _ in values])
    put_tag(scoped, tag_id, values, source, none_have_it=True)


def drop_tag(scoped: Session, tag_id: str) -> int:
    """Take the tag off everyone (the tag is being deleted); returns how many had it."""
    result = scoped.execute(
        delete(ProfileTag).where(ProfileTag.tag_id == tag_id), execution_options={"synchronize_session": False}
    )
    return int(getattr(result, "rowcount", 0) or 0)


def move_tags(scoped: Session, merges: Sequence[tuple[str, str]]) -> None:
    """For each (survivor, merged) in order: the merged profile's tags the survivor lacks go to the
    survivor (kept as they were put on); the rest go with the merged profile."""
    for survivor, merged in merges:
        held = select(ProfileTag.tag_id).where(ProfileTag.profile_id == survivor).scalar_subquery()
        scoped.execute(
            update(ProfileTag)
            .where(ProfileTag.profile_id == merged, ProfileTag.tag_id.not_in(held))
            .values(profile_id=survivor),
            execution_options={"synchronize_session": False},
        )
        scoped.execute(
            delete(ProfileTag).where(ProfileTag.profile_id == merged),
            execution_options={"synchronize_session": False},
        )
