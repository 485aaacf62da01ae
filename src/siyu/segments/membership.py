"""Who is in a segment, and every change to it: a dynamic segment's members change by the batch
run's differences (who entered, who left); a static one is given its people once.

Each entry and exit is recorded as an event on the person — "Segment Entered" or "Segment
Exited" — so journeys can start on it, and counted in the segment's size for the day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from siyu.accounts.facade import get_workspace
from siyu.identity.facade import speaking_identities
from siyu.ingest.facade import DerivedEvent, append_derived_events
from siyu.profiles.facade import existing_profiles
from siyu.segments.tables import Segment, SegmentMember, SegmentSize
from siyu.storage.bulk import append_rows
from siyu.storage.scoping import require_workspace

ENTERED_EVENT = "Segment Entered"
EXITED_EVENT = "Segment Exited"
CHUNK = 5_000


def apply_changes(
    scoped: Session,
    segment: Segment,
    entered: Sequence[str],
    exited: Sequence[str],
    at: datetime,
    speaker: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> tuple[int, int]:
    """Add ``entered`` (who are not members yet) and remove ``exited`` (who are); returns how
    many entered and left. Someone merged away since the snapshot is no one now: they enter
    nothing."""
    alive = sorted(existing_profiles(scoped, entered)) if entered else []
    append_rows(
        scoped,
        SegmentMember,
        ("segment_id", "profile_id", "entered_at"),
        [(segment.id, p, at) for p in alive],
        on_conflict=("segment_id", "profile_id"),
    )
    gone = sorted(exited)
    for start in range(0, len(gone), CHUNK):
        scoped.execute(
            delete(SegmentMember).where(
                SegmentMember.segment_id == segment.id, SegmentMember.profile_id.in_(gone[start : start + CHUNK])
            ),
            execution_options={"synchronize_session": False},
        )
    _announce(scoped, segment, alive, gone, at, speaker, run_id)
    segment.people = int(
        scoped.scalar(select(func.count()).select_from(SegmentMember).where(SegmentMember.segment_id == segment.id))
        or 0
    )
    segment.refreshed_at = at
    _count_day(scoped, segment, len(alive), len(gone), at)
    return len(alive), len(gone)


def members_of(scoped: Session, segment_id: str) -> set[str]:
    return set(scoped.scalars(select(SegmentMember.profile_id).where(SegmentMember.segment_id == segment_id)))


def _announce(
    scoped: Session,
    segment: Segment,
    entered: Sequence[str],
    exited: Sequence[str],
    at: datetime,
    speaker: Mapping[str, str] | None,
    run_id: str | None,
) -> None:
    if speaker is None:
        speaker = speaking_identities(scoped, [*entered, *exited])
    stamp = at.isoformat()
    events = []
    for people, event in ((entered, ENTERED_EVENT), (exited, EXITED_EVENT)):
        for profile_id in people:
            identity_id = speaker.get(profile_id)
            if identity_id is None:  # a person with only weak or shared identifiers has no voice
                continue
            properties = {"segment_id": segment.id, "segment": segment.name}
            if run_id is not None:
                properties["run_id"] = run_id
            events.append(
                DerivedEvent(
                    message_id=f"segment:{segment.id}:{profile_id}:{event}:{stamp}",
                    event=event,
                    identity_id=identity_id,
                    properties=properties,
                    timestamp=at,
                    source="segments",
                )
            )
    if events:
        append_derived_events(scoped, events, at)


def _count_day(scoped: Session, segment: Segment, entered: int, exited: int, at: datetime) -> None:
    timezone = get_workspace(scoped, require_workspace(scoped)).timezone
    day = at.astimezone(ZoneInfo(timezone)).date()
    row = scoped.scalar(select(SegmentSize).where(SegmentSize.segment_id == segment.id, SegmentSize.day == day))
    if row is None:
        scoped.add(SegmentSize(segment_id=segment.id, day=day, people=segment.people, entered=entered, exited=exited))
    else:
        row.people = segment.people
        row.entered, row.exited = row.entered + entered, row.exited + exited
    scoped.flush()
