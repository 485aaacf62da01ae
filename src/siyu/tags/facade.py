"""Tags facade: the tag library, manual tagging (one person, many, or a file), each tag's
history and coverage, and what the batch run needs to keep rule and computed tags current.

Rule tags are checked against a catalog the caller gathers (the batch engine knows the traits
and events people have); a rule that does not check out is refused with where the problem is and
never stored. Computed and rule tags change only through the batch run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.pagination import Page
from siyu.profiles.facade import tags_of
from siyu.profiles.tables import ProfileTag
from siyu.rules.catalog import TagRef
from siyu.storage.arrow_transfer import read_arrow
from siyu.storage.paging import newest_first
from siyu.tags import by_file, library, membership
from siyu.tags.contracts import (
    CategoryPublic,
    CoveragePoint,
    FileTagged,
    TagChangePublic,
    TagDraft,
    Tagged,
    TagPublic,
)
from siyu.tags.evaluate import TagSpec
from siyu.tags.tables import Tag, TagChange, TagCoverage

create_tag = library.create_tag
update_tag = library.update_tag
delete_tag = library.delete_tag
list_tags = library.list_tags
category_tree = library.category_tree
create_category = library.create_category
delete_category = library.delete_category

__all__ = [
    "CategoryPublic",
    "TagDraft",
    "TagPublic",
    "category_tree",
    "create_category",
    "create_tag",
    "delete_category",
    "delete_tag",
    "list_tags",
    "update_tag",
]


def get_tag(scoped: Session, tag_id: str) -> TagPublic:
    return library.tag_to_public(library.get_tag_row(scoped, tag_id))


def tag_refs(scoped: Session) -> dict[str, TagRef]:
    """Every tag as rules may name it."""
    return {t.id: TagRef(t.id, t.name, t.kind) for t in scoped.scalars(select(Tag))}


def tag_people(scoped: Session, tag_id: str, profile_ids: list[str], actor_id: str | None) -> Tagged:
    return membership.tag_people(scoped, library.get_tag_row(scoped, tag_id), profile_ids, actor_id)


def untag_people(scoped: Session, tag_id: str, profile_ids: list[str], actor_id: str | None) -> Tagged:
    return membership.untag_people(scoped, library.get_tag_row(scoped, tag_id), profile_ids, actor_id)


def tag_by_file(
    scoped: Session, tag_id: str, path: Path, kind: str, column: str | None, actor_id: str | None, remove: bool = False
) -> FileTagged:
    return by_file.tag_by_file(scoped, library.get_tag_row(scoped, tag_id), path, kind, column, actor_id, remove=remove)


def tag_history(scoped: Session, tag_id: str, cursor: str | None = None, limit: int = 50) -> Page[TagChangePublic]:
    """The tag's changes, newest first."""
    library.get_tag_row(scoped, tag_id)
    stmt = select(TagChange).where(TagChange.tag_id == tag_id)
    return newest_first(
        scoped,
        stmt,
        TagChange.id,
        cursor=cursor,
        limit=limit,
        convert=lambda r: TagChangePublic(r.profile_id, r.change, r.value, r.source, r.actor_id, r.run_id, r.at),
    )


def tag_coverage(scoped: Session, tag_id: str, days: int = 90) -> list[CoveragePoint]:
    """The tag's holders at the end of each day it changed, oldest first (at most ``days``)."""
    library.get_tag_row(scoped, tag_id)
    rows = scoped.scalars(
        select(TagCoverage).where(TagCoverage.tag_id == tag_id).order_by(TagCoverage.day.desc()).limit(days)
    )
    return [CoveragePoint(r.day, r.people, r.added, r.removed, r.of_everyone) for r in reversed(list(rows))]


@dataclass(frozen=True)
class ProfileTagPublic:
    tag_id: str
    name: str
    kind: str
    value: str
    source: str
    added_at: datetime


def profile_tags(scoped: Session, profile_id: str) -> list[ProfileTagPublic]:
    held = tags_of(scoped, profile_id)
    names = {t.id: t for t in scoped.scalars(select(Tag).where(Tag.id.in_([h.tag_id for h in held])))}
    return [
        ProfileTagPublic(h.tag_id, names[h.tag_id].name, names[h.tag_id].kind, h.value, h.source, h.added_at)
        for h in held
        if h.tag_id in names
    ]


# For the batch run --------------------------------------------------------------------------


def tags_to_evaluate(scoped: Session) -> list[TagSpec]:
    """The rule and computed tags, in the order the run evaluates them."""
    return [TagSpec(t.id, t.name, t.kind, t.rule, t.computed) for t in library.evaluation_order(scoped)]


def held_tags(scoped: Session, tag_ids: Sequence[str] | None = None) -> pa.Table:
    """profile_id, tag_id, value of every tag (or of ``tag_ids``) people have now."""
    where = None if tag_ids is None else ("tag_id", list(tag_ids))
    return read_arrow(scoped, ProfileTag, ("profile_id", "tag_id", "value"), where_in=where)


@dataclass(frozen=True)
class TagsWritten:
    tags: int
    added: int
    removed: int
    revalued: int


def write_tag_results(
    scoped: Session, results: Mapping[str, pa.Table], speaker: Mapping[str, str], run_id: str
) -> TagsWritten:
    """Make each evaluated tag's holders the run's (profile_id, value) for it; tags deleted
    since the run read them are skipped."""
    rows = {t.id: t for t in scoped.scalars(select(Tag).where(Tag.id.in_(list(results))))}
    added = removed = revalued = 0
    at = utcnow()
    for tag_id, members in results.items():
        tag = rows.get(tag_id)
        if tag is None or tag.kind == "manual":
            continue
        holders = dict(zip(members.column("profile_id").to_pylist(), members.column("value").to_pylist(), strict=True))
        a, r, v = membership.apply_results(scoped, tag, holders, speaker, run_id, at)
        added, removed, revalued = added + a, removed + r, revalued + v
    return TagsWritten(len(rows), added, removed, revalued)
