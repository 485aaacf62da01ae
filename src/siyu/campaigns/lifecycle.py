"""A campaign's life: scheduled (or held for approval when large), approved, paused, resumed,
cancelled. Every move is allowed from the states named here only; pausing and cancelling also
hold or drop the campaign's messages already waiting in the channels' ledger."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from siyu.accounts.contracts import Principal, Role
from siyu.accounts.facade import get_workspace, require_role
from siyu.campaigns.library import (
    CampaignPublic,
    campaign_settings,
    campaign_to_public,
    get_campaign_row,
    readiness_problems,
    source_of,
)
from siyu.campaigns.recurrence import next_occurrence
from siyu.campaigns.tables import Campaign
from siyu.channels import facade as channels
from siyu.core.clock import utcnow
from siyu.core.errors import ConflictError, ValidationFailedError
from siyu.jobs.contracts import JobSpec
from siyu.jobs.queue import enqueue
from siyu.segments import facade as segments
from siyu.storage.scoping import require_workspace

RUN_TASK = "campaigns.run"
DECIDE_TASK = "campaigns.decide"
RECUR_TASK = "campaigns.recur"
QUEUE = "sends"
FINISHED = ("completed", "cancelled")


def _expect(row: Campaign, *states: str) -> None:
    if row.status not in states:
        raise ConflictError(f"the campaign is {row.status}; this needs it {' or '.join(states)}")


def _job(scoped: Session, task: str, payload: dict[str, str], when: datetime, key: str) -> None:
    """One job of the campaign's, queued once by its key however often asked."""
    spec = JobSpec(
        task, payload, run_at=when, workspace_id=require_workspace(scoped), queue=QUEUE, idempotency_key=f"{task}:{key}"
    )
    enqueue(scoped, spec)


def enqueue_run(scoped: Session, row: Campaign, at: datetime | None = None) -> None:
    """Ask for the campaign's run at ``at`` (now if not given): one job per campaign, time and
    point reached, so a run that hands over to the next is never taken for a repeat."""
    when = at or utcnow()
    _job(scoped, RUN_TASK, {"campaign_id": row.id}, when, f"{row.id}:{int(when.timestamp() * 1000)}:{row.cursor}")


def start_recurring(scoped: Session, row: Campaign, after: datetime) -> None:
    """A recurring campaign waits for its next time, with a job queued for it."""
    timezone = get_workspace(scoped, require_workspace(scoped)).timezone
    when = next_occurrence(row.recurrence, after, timezone)
    if when is None:
        raise ValidationFailedError(
            "the campaign does not come round again before its last day", details={"path": "recurrence.until"}
        )
    row.status, row.next_at = "recurring", when
    _job(scoped, RECUR_TASK, {"campaign_id": row.id, "at": when.isoformat()}, when, f"{row.id}:{int(when.timestamp())}")


def _go(scoped: Session, row: Campaign) -> None:
    """Scheduled: a one-shot campaign's run is queued for its time; a recurring one waits."""
    if row.recurrence:
        start_recurring(scoped, row, max(row.scheduled_at or utcnow(), utcnow()))
    else:
        row.status = "scheduled"
        enqueue_run(scoped, row, row.scheduled_at)


def enqueue_decision(scoped: Session, row: Campaign) -> None:
    """Ask for the test's winner to be picked, ``hours`` after launch (now, if that has passed)."""
    assert row.launched_at is not None
    when = max(row.launched_at + timedelta(hours=int(row.test["hours"])), utcnow())
    _job(scoped, DECIDE_TASK, {"campaign_id": row.id}, when, f"{row.id}:{int(when.timestamp())}")


def schedule(scoped: Session, campaign_id: str, known_traits: Collection[str]) -> CampaignPublic:
    """Check the campaign can go and schedule it — or, above the workspace's approval threshold,
    hold it for an admin's approval. Every reason it cannot go is in the error's details."""
    row = get_campaign_row(scoped, campaign_id)
    _expect(row, "draft")
    problems = readiness_problems(scoped, row, known_traits)
    if problems:
        raise ValidationFailedError(
            f"the campaign cannot be scheduled: {problems[0].message}",
            details={"problems": [{"where": p.where, "message": p.message} for p in problems]},
        )
    assert row.segment_id is not None
    row.audience = segments.get_segment(scoped, row.segment_id).people
    row.needs_approval = row.audience > campaign_settings(scoped).approval_threshold
    row.approved_by, row.approved_at = None, None
    if row.needs_approval:
        row.status = "awaiting_approval"
    else:
        _go(scoped, row)
    scoped.flush()
    return campaign_to_public(row)


def approve(scoped: Session, campaign_id: str, actor: Principal) -> CampaignPublic:
    """An admin lets a large campaign go (the large-send guard)."""
    require_role(actor, Role.ADMIN)
    row = get_campaign_row(scoped, campaign_id)
    _expect(row, "awaiting_approval")
    row.approved_by, row.approved_at = actor.user_id or actor.api_key_id, utcnow()
    _go(scoped, row)
    scoped.flush()
    return campaign_to_public(row)


def unschedule(scoped: Session, campaign_id: str) -> CampaignPublic:
    """Back to draft, before it started: to change it, or when an approver turns it down."""
    row = get_campaign_row(scoped, campaign_id)
    _expect(row, "scheduled", "awaiting_approval", "recurring")
    row.status, row.next_at = "draft", None
    row.approved_by, row.approved_at = None, None
    scoped.flush()
    return campaign_to_public(row)


def pause(scoped: Session, campaign_id: str) -> CampaignPublic:
    """Stop handing people to the ledger and hold the messages already waiting there."""
    row = get_campaign_row(scoped, campaign_id)
    _expect(row, "scheduled", "running", "testing", "recurring")
    row.status = "paused"
    channels.hold_source(scoped, source_of(row.id))
    scoped.flush()
    return campaign_to_public(row)


def resume(scoped: Session, campaign_id: str) -> CampaignPublic:
    row = get_campaign_row(scoped, campaign_id)
    _expect(row, "paused")
    channels.release_source(scoped, source_of(row.id))
    if row.recurrence:
        start_recurring(scoped, row, utcnow())
    elif row.launched_at is None:
        row.status = "scheduled"
        enqueue_run(scoped, row, max(row.scheduled_at or utcnow(), utcnow()))
    else:
        row.status = "running"
        enqueue_run(scoped, row)
    scoped.flush()
    return campaign_to_public(row)


def cancel(scoped: Session, campaign_id: str) -> CampaignPublic:
    """Stop for good: whatever has not gone yet never goes (it stays in the ledger, skipped)."""
    row = get_campaign_row(scoped, campaign_id)
    if row.status in FINISHED:
        raise ConflictError(f"the campaign is {row.status} already")
    row.status, row.next_at = "cancelled", None
    row.finished_at = utcnow()
    channels.cancel_source(scoped, source_of(row.id), row.finished_at)
    scoped.flush()
    return campaign_to_public(row)
