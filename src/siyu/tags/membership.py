"""Who has a tag, and every change to it: put on or taken off by hand or by file (manual tags),
or by the batch run (rule and computed tags, written as the difference from what people have).

Each change is kept in the tag's history, counted in its coverage for the day, and recorded as an
event on the person — "Tag Added", "Tag Removed", or for a computed tag "Tag Value Changed" — so
journeys can start on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.accounts.facade import get_workspace
from siyu.core.clock import utcnow
from siyu.core.errors import ValidationFailedError
from siyu.core.ids import new_id
from siyu.identity.facade import speaking_identities
from siyu.ingest.facade import DerivedEvent, append_derived_events
from siyu.profiles.facade import existing_profiles, put_tag, revalue_tag, take_tag
from siyu.profiles.tables import Profile, ProfileTag
from siyu.storage.bulk import append_rows
from siyu.storage.scoping import require_workspace
from siyu.tags.contracts import Tagged
from siyu.tags.tables import Tag, TagChange, TagCoverage

ADDED_EVENT = "Tag Added"
REMOVED_EVENT = "Tag Removed"
CHANGED_EVENT = "Tag Value Changed"  # a computed tag's value
MAX_PEOPLE_PER_CALL = 100_000


def tag_people(
    scoped: Session, tag: Tag, profile_ids: Sequence[str], actor_id: str | None, source: str = "manual"
) -> Tagged:
    """Put a manual tag on people (who must exist); returns how many got it now."""
    wanted = _manual(tag, profile_ids)
    missing = sorted(set(wanted) - existing_profiles(scoped, wanted))
    if missing:
        raise ValidationFailedError(
            f"{len(missing)} of the people do not exist", details={"unknown_profiles": missing[:100]}
        )
    added = put_tag(scoped, tag.id, [(p, "") for p in wanted], source, actor_id)
    record_changes(scoped, tag, dict.fromkeys(added, ""), [], {}, source, actor_id=actor_id)
    return Tagged(len(added), len(wanted) - len(added))


def untag_people(scoped: Session, tag: Tag, profile_ids: Sequence[str], actor_id: str | None) -> Tagged:
    wanted = _manual(tag, profile_ids)
    removed = take_tag(scoped, tag.id, wanted)
    record_changes(scoped, tag, {}, removed, {}, "manual", actor_id=actor_id)
    return Tagged(len(removed), len(wanted) - len(removed))


def _manual(tag: Tag, profile_ids: Sequence[str]) -> list[str]:
    if tag.kind != "manual":
        raise ValidationFailedError(
            f"{tag.name!r} is a {tag.kind} tag: the batch run decides who has it", details={"kind": tag.kind}
        )
    wanted = list(dict.fromkeys(profile_ids))
    if not wanted or len(wanted) > MAX_PEOPLE_PER_CALL:
        raise ValidationFailedError(f"give 1 to {MAX_PEOPLE_PER_CALL} people")
    return wanted


def apply_results(
    scoped: Session,
    tag: Tag,
    members: Mapping[str, str],
    speaker: Mapping[str, str],
    run_id: str,
    at: datetime,
) -> tuple[int, int, int]:
    """Make the tag's holders ``members`` (profile_id → value), as the batch run found them;
    returns (added, removed, revalued)."""
    stmt = select(ProfileTag.profile_id, ProfileTag.value).where(ProfileTag.tag_id == tag.id)
    held: dict[str, str] = {row[0]: row[1] for row in scoped.execute(stmt)}
    # In key order: each index then takes its new entries in runs, not scattered one by one.
    gone = sorted(p for p in held if p not in members)
    new = {p: members[p] for p in sorted(members) if p not in held}
    revalued = {p: members[p] for p in sorted(members) if p in held and held[p] != members[p]}
    take_tag(scoped, tag.id, gone)
    # Someone merged away since the snapshot is no one now: they get nothing.
    alive = existing_profiles(scoped, new) if new else set()
    added = put_tag(scoped, tag.id, [(p, v) for p, v in new.items() if p in alive], tag.kind, none_have_it=True)
    revalue_tag(scoped, tag.id, list(revalued.items()), tag.kind)
    record_changes(scoped, tag, {p: new[p] for p in added}, gone, revalued, tag.kind, run_id=run_id, speaker=speaker)
    tag.evaluated_at = at
    return len(added), len(gone), len(revalued)


def record_changes(
    scoped: Session,
    tag: Tag,
    added: Mapping[str, str],
    removed: Sequence[str],
    revalued: Mapping[str, str],
    source: str,
    *,
    actor_id: str | None = None,
    run_id: str | None = None,
    speaker: Mapping[str, str] | None = None,
) -> None:
    """History, coverage and events for what just changed, and the tag's count of holders."""
    now = utcnow()
    rows = [
        *((tag.id, p, "added", v, source, actor_id, run_id, now) for p, v in added.items()),
        *((tag.id, p, "removed", "", source, actor_id, run_id, now) for p in removed),
        *((tag.id, p, "changed", v, source, actor_id, run_id, now) for p, v in revalued.items()),
    ]
    if rows:
        append_rows(
            scoped,
            TagChange,
            ("id", "tag_id", "profile_id", "change", "value", "source", "actor_id", "run_id", "at"),
            [(new_id("tgx_"), *r) for r in rows],
            on_conflict=("id",),
        )
        _announce(scoped, tag, added, removed, revalued, source, now, speaker)
    tag.people = int(
        scoped.scalar(select(func.count()).select_from(ProfileTag).where(ProfileTag.tag_id == tag.id)) or 0
    )
    _count_day(scoped, tag, len(added), len(removed), now)


def _announce(
    scoped: Session,
    tag: Tag,
    added: Mapping[str, str],
    removed: Sequence[str],
    revalued: Mapping[str, str],
    source: str,
    at: datetime,
    speaker: Mapping[str, str] | None,
) -> None:
    people = [*added, *removed, *revalued]
    if speaker is None:
        speaker = speaking_identities(scoped, people)
    stamp = at.isoformat()
    events = []
    for changes, event in (
        (added, ADDED_EVENT),
        (dict.fromkeys(removed, ""), REMOVED_EVENT),
        (revalued, CHANGED_EVENT),
    ):
        for profile_id, value in changes.items():
            identity_id = speaker.get(profile_id)
            if identity_id is None:  # a person with only weak or shared identifiers has no voice
                continue
            properties = {"tag_id": tag.id, "tag": tag.name, "kind": tag.kind, "source": source}
            if tag.kind == "computed":
                properties["value"] = value
            events.append(
                DerivedEvent(
                    message_id=f"tag:{tag.id}:{profile_id}:{event}:{stamp}",
                    event=event,
                    identity_id=identity_id,
                    properties=properties,
                    timestamp=at,
                    source=f"tags.{source}",
                )
            )
    if events:
        append_derived_events(scoped, events, at)


def _count_day(scoped: Session, tag: Tag, added: int, removed: int, now: datetime) -> None:
    timezone = get_workspace(scoped, require_workspace(scoped)).timezone
    day = now.astimezone(ZoneInfo(timezone)).date()
    everyone = int(scoped.scalar(select(func.count()).select_from(Profile)) or 0)
    row = scoped.scalar(select(TagCoverage).where(TagCoverage.tag_id == tag.id, TagCoverage.day == day))
    if row is None:
        scoped.add(
            TagCoverage(tag_id=tag.id, day=day, people=tag.people, added=added, removed=removed, of_everyone=everyone)
        )
    else:
        row.people, row.of_everyone = tag.people, everyone
        row.added, row.removed = row.added + added, row.removed + removed
    scoped.flush()
