"""A recurring campaign's occurrences. Each time it comes round, a copy of it is made — its
segment as it is then, its variants, holdout, values, test and guards — named after the local
time and scheduled at once, under the approval the recurring campaign was given. A copy that
cannot go (the segment emptied, a template deleted) is kept, cancelled, with the reason; the
recurring campaign then waits for its next time, or completes after its last day."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from siyu.accounts.facade import get_workspace
from siyu.campaigns.library import get_campaign_row, readiness_problems
from siyu.campaigns.lifecycle import enqueue_run, start_recurring
from siyu.campaigns.recurrence import next_occurrence
from siyu.campaigns.tables import Campaign
from siyu.core.clock import utcnow
from siyu.segments import facade as segments
from siyu.storage.scoping import require_workspace


def occur(scoped: Session, campaign_id: str, at: datetime) -> Campaign | None:
    """The occurrence of ``at``: made once (a repeated job finds the time moved on)."""
    parent = get_campaign_row(scoped, campaign_id)
    if parent.status != "recurring" or parent.next_at is None or parent.next_at != at:
        return None
    timezone = get_workspace(scoped, require_workspace(scoped)).timezone
    local = at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    child = Campaign(
        name=f"{parent.name[:60]} · {local}",
        description=parent.description,
        segment_id=parent.segment_id,
        variants=[dict(v) for v in parent.variants],
        holdout_id=parent.holdout_id,
        values=dict(parent.values),
        guards=dict(parent.guards),
        test=dict(parent.test),
        scheduled_at=at,
        parent_id=parent.id,
        created_by=parent.created_by,
        approved_by=parent.approved_by,
        approved_at=parent.approved_at,
        needs_approval=parent.needs_approval,
    )
    scoped.add(child)
    scoped.flush()
    problems = readiness_problems(scoped, child, None)
    problems = [p for p in problems if p.where != "scheduled_at"]
    if problems:
        child.status, child.finished_at = "cancelled", utcnow()
        child.problem = f"not sent: {problems[0].message}"[:300]
    else:
        assert child.segment_id is not None
        child.audience = segments.get_segment(scoped, child.segment_id).people
        child.status = "scheduled"
        enqueue_run(scoped, child, at)
    if next_occurrence(parent.recurrence, at, timezone) is None:
        parent.status, parent.next_at, parent.finished_at = "completed", None, utcnow()
    else:
        start_recurring(scoped, parent, at)
    scoped.flush()
    return child
