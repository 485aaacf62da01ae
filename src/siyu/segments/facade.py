"""Segments facade: the segment library, static segments (given their people, or frozen from
another segment), members, each segment's size history, and what the batch run needs to keep
dynamic segments current.

Dynamic segments are checked against a catalog the caller gathers (the batch engine knows the
traits, events and groups people have); a rule that does not check out is refused with where the
problem is and never stored. Dynamic segments change only through the batch run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from siyu.core.clock import utcnow
from siyu.core.errors import ValidationFailedError
from siyu.core.pagination import Page, check_limit, decode_cursor, encode_cursor
from siyu.ingest.people_file import FileRows, RejectedRow, people_batches
from siyu.profiles.facade import existing_profiles
from siyu.rules.catalog import Catalog
from siyu.segments import audiences, exports, holdouts, library, membership
from siyu.segments.contracts import (
    Member,
    SegmentDraft,
    SegmentPublic,
    SegmentSpec,
    SegmentsWritten,
    SizePoint,
)
from siyu.segments.evaluate import SegmentChanges
from siyu.segments.tables import Segment, SegmentMember, SegmentSize
from siyu.storage.arrow_transfer import read_arrow
from siyu.storage.bulk import fetch_rows

MAX_STATIC_PEOPLE = 1_000_000

list_segments = library.list_segments
members_file = exports.members_file
audience_file = audiences.audience_file
list_holdouts = holdouts.list_holdouts
set_global_share = holdouts.set_global_share
create_holdout = holdouts.create_holdout
delete_holdout = holdouts.delete_holdout
holdouts_of = holdouts.holdouts_of
update_segment = library.update_segment
delete_segment = library.delete_segment
segment_names = library.segment_names

__all__ = [
    "Member",
    "SegmentChanges",
    "SegmentDraft",
    "SegmentPublic",
    "SizePoint",
    "delete_segment",
    "list_segments",
    "segment_names",
    "update_segment",
]


def get_segment(scoped: Session, segment_id: str) -> SegmentPublic:
    return library.segment_to_public(library.get_segment_row(scoped, segment_id))


def create_segment(
    scoped: Session,
    draft: SegmentDraft,
    catalog: Catalog,
    actor_id: str | None,
    people: Sequence[str] | None = None,
) -> SegmentPublic:
    """A dynamic segment (its members come with the next batch run), or a static one with
    ``people`` (each must exist)."""
    if draft.kind == "dynamic" and people is not None:
        raise ValidationFailedError("a dynamic segment's rule decides its people", details={"path": "people"})
    wanted = list(dict.fromkeys(people or []))
    if len(wanted) > MAX_STATIC_PEOPLE:
        raise ValidationFailedError(f"a static segment is given at most {MAX_STATIC_PEOPLE} people")
    missing = sorted(set(wanted) - existing_profiles(scoped, wanted)) if wanted else []
    if missing:
        raise ValidationFailedError(
            f"{len(missing)} of the people do not exist", details={"unknown_profiles": missing[:100]}
        )
    row = library.create_segment(scoped, draft, catalog, actor_id)
    if draft.kind == "static":
        membership.apply_changes(scoped, row, wanted, [], utcnow())
    return library.segment_to_public(row)


@dataclass(frozen=True)
class ListUploaded:
    """A static segment made from a file: every row accounted for — a person in the segment (a
    person named twice is in it once), or rejected with its row number and why."""

    segment: SegmentPublic
    rows: int
    people: int
    rejected: list[RejectedRow]


def segment_from_file(
    scoped: Session,
    name: str,
    path: Path,
    kind: str,
    column: str | None,
    actor_id: str | None,
    description: str = "",
) -> ListUploaded:
    """A static segment of the people a file names (an uploaded list, e.g. a campaign's)."""
    rejected: list[RejectedRow] = []
    counted = FileRows()
    people: dict[str, None] = {}
    for found in people_batches(scoped, path, kind, column, rejected, counted):
        people.update(dict.fromkeys(found))
    if not people:
        raise ValidationFailedError(
            "the file names nobody this workspace knows",
            details={"rows": counted.total, "rejected": [r.__dict__ for r in rejected[:100]]},
        )
    draft = SegmentDraft(name=name, kind="static", description=description)
    row = library.create_segment(scoped, draft, Catalog(), actor_id)
    membership.apply_changes(scoped, row, list(people), [], utcnow())
    return ListUploaded(library.segment_to_public(row), counted.total, len(people), rejected)


def freeze_segment(scoped: Session, segment_id: str, name: str, actor_id: str | None) -> SegmentPublic:
    """A static segment holding the segment's members now: a snapshot that no run changes."""
    source = library.get_segment_row(scoped, segment_id)
    members = sorted(membership.members_of(scoped, segment_id))
    draft = SegmentDraft(name=name, kind="static", description=f"{source.name} 的快照")
    row = library.create_segment(scoped, draft, Catalog(), actor_id, frozen_from=source.id)
    membership.apply_changes(scoped, row, members, [], utcnow())
    return library.segment_to_public(row)


def segment_members(scoped: Session, segment_id: str, cursor: str | None = None, limit: int = 50) -> Page[Member]:
    """The segment's members, newest people first."""
    library.get_segment_row(scoped, segment_id)
    check_limit(limit)
    stmt = select(SegmentMember.profile_id, SegmentMember.entered_at).where(SegmentMember.segment_id == segment_id)
    after = decode_cursor(cursor)
    if after:
        stmt = stmt.where(SegmentMember.profile_id < after)
    rows = list(scoped.execute(stmt.order_by(SegmentMember.profile_id.desc()).limit(limit + 1)))
    items = [Member(r[0], r[1]) for r in rows[:limit]]
    more = len(rows) > limit and items
    return Page(items=items, next_cursor=encode_cursor(items[-1].profile_id) if more else None)


def member_ids(scoped: Session, segment_id: str) -> list[str]:
    """Every member's profile id (for exports and sends)."""
    library.get_segment_row(scoped, segment_id)
    return sorted(membership.members_of(scoped, segment_id))


def segment_sizes(scoped: Session, segment_id: str, days: int = 90) -> list[SizePoint]:
    """The segment's size at the end of each day it changed, oldest first (at most ``days``)."""
    library.get_segment_row(scoped, segment_id)
    rows = scoped.scalars(
        select(SegmentSize).where(SegmentSize.segment_id == segment_id).order_by(SegmentSize.day.desc()).limit(days)
    )
    return [SizePoint(r.day, r.people, r.entered, r.exited) for r in reversed(list(rows))]


def segment_overlap(scoped: Session, a: str, b: str) -> tuple[int, int, int]:
    """How many people are in ``a``, in ``b``, and in both."""
    first, second = library.get_segment_row(scoped, a), library.get_segment_row(scoped, b)
    other = aliased(SegmentMember)
    both = scoped.scalar(
        select(func.count())
        .select_from(SegmentMember)
        .join(other, other.profile_id == SegmentMember.profile_id)
        .where(SegmentMember.segment_id == a, other.segment_id == b, other.workspace_id == SegmentMember.workspace_id)
    )
    return first.people, second.people, int(both or 0)


@dataclass(frozen=True)
class HoldoutSplit:
    """A segment's members, and how many of them a holdout sets aside."""

    members: int
    held_out: int


def holdout_split(scoped: Session, holdout_id: str, segment_id: str) -> HoldoutSplit:
    row = holdouts.get_holdout_row(scoped, holdout_id)
    people = membership.members_of(scoped, library.get_segment_row(scoped, segment_id).id)
    return HoldoutSplit(len(people), len(holdouts.held_out(row, people)))


def in_holdout(scoped: Session, holdout_id: str, profile_ids: Sequence[str]) -> set[str]:
    """Which of ``profile_ids`` the holdout sets aside (the send policy asks this)."""
    return holdouts.held_out(holdouts.get_holdout_row(scoped, holdout_id), profile_ids)


@dataclass(frozen=True)
class ProfileSegment:
    segment_id: str
    name: str
    kind: str
    entered_at: datetime


def memberships(scoped: Session, profile_ids: Sequence[str]) -> dict[str, set[str]]:
    """The segments each of these people is in, read in bulk."""
    out: dict[str, set[str]] = {}
    for profile_id, segment_id in fetch_rows(
        scoped, SegmentMember, ("profile_id", "segment_id"), "profile_id", profile_ids
    ):
        out.setdefault(profile_id, set()).add(segment_id)
    return out


def global_holdout_members(scoped: Session, profile_ids: Sequence[str]) -> set[str]:
    """Which of these people the workspace's global control group holds (none when it is off)."""
    row = holdouts.global_holdout(scoped)
    return holdouts.held_out(row, profile_ids) if row is not None and row.share_bp > 0 else set()


def profile_segments(scoped: Session, profile_id: str) -> list[ProfileSegment]:
    rows = scoped.execute(
        select(Segment.id, Segment.name, Segment.kind, SegmentMember.entered_at)
        .join(SegmentMember, SegmentMember.segment_id == Segment.id)
        .where(SegmentMember.profile_id == profile_id)
        .order_by(Segment.name)
    )
    return [ProfileSegment(*r) for r in rows]


# For the batch run --------------------------------------------------------------------------


def segments_to_evaluate(scoped: Session) -> list[SegmentSpec]:
    """The dynamic segments, in the order the run evaluates them."""
    return [SegmentSpec(s.id, s.name, s.rule or {}) for s in library.evaluation_order(scoped)]


def held_members(scoped: Session, segment_ids: Sequence[str] | None = None) -> pa.Table:
    """profile_id, segment_id of every membership (or of ``segment_ids``') now."""
    where = None if segment_ids is None else ("segment_id", list(segment_ids))
    return read_arrow(scoped, SegmentMember, ("profile_id", "segment_id"), where_in=where)


def write_segment_results(
    scoped: Session, results: Mapping[str, SegmentChanges], speaker: Mapping[str, str] | None, run_id: str
) -> SegmentsWritten:
    """Apply each evaluated segment's changes; segments deleted (or made static) since the run
    read them are skipped. ``speaker``: the identifier each person's events are recorded under,
    if the caller has them (else they are looked up)."""
    rows = {s.id: s for s in scoped.scalars(select(Segment).where(Segment.id.in_(list(results))))}
    entered = exited = 0
    at = utcnow()
    for segment_id, changes in results.items():
        row = rows.get(segment_id)
        if row is None or row.kind != "dynamic":
            continue
        e, x = membership.apply_changes(scoped, row, changes.entered_ids(), changes.exited_ids(), at, speaker, run_id)
        entered, exited = entered + e, exited + x
    return SegmentsWritten(len(rows), entered, exited)
