"""A campaign's run: its audience frozen once, each person drawn into a variant, then handed to
the channels' ledger a chunk at a time.

Each chunk's messages and the campaign's cursor are committed together, and the ledger writes a
(campaign, person, step) once by its key: a run killed at any point, run again, goes on from
the last committed chunk, and nobody is sent to twice or left out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.campaigns.checkpoints import schedule_checks
from siyu.campaigns.library import get_campaign_row, source_of
from siyu.campaigns.lifecycle import enqueue_decision, enqueue_run
from siyu.campaigns.tables import Campaign, CampaignRecipient
from siyu.channels import facade as channels
from siyu.channels.prepare import Links, Recipient, SendRequest
from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError
from siyu.rules.buckets import bucket_of
from siyu.segments import facade as segments
from siyu.storage.bulk import append_rows
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from siyu.tracking.facade import LinkMinter

CHUNK = 5_000
WAITING = "*"  # the variant of the people a test keeps back for its winner


@dataclass
class RunReport:
    chunks: int = 0
    prepared: int = 0
    status: str = ""


def variant_of(campaign_id: str, variants: Sequence[dict[str, Any]], profile_id: str) -> str:
    """The variant a person is drawn into: their stable bucket for the campaign (0–9999) against
    the variants' cumulative shares."""
    bucket = bucket_of(f"campaign:{campaign_id}", profile_id)
    upto = 0
    for v in variants:
        upto += int(v["share"]) * 100
        if bucket < upto:
            return str(v["key"])
    return str(variants[-1]["key"])


def in_test(campaign_id: str, percent: int, profile_id: str) -> bool:
    """Whether a person is in the share of the audience a test-then-winner campaign tests on."""
    return bucket_of(f"campaign-test:{campaign_id}", profile_id) < percent * 100


def freeze_audience(scoped: Session, row: Campaign) -> int:
    """The segment's members now, each with their variant, as the campaign's audience; with a
    test, only its share is drawn into the variants and the rest wait for the winner. An
    occurrence of a recurring campaign for new people only leaves out whoever an earlier one had."""
    assert row.segment_id is not None
    people = segments.member_ids(scoped, row.segment_id)
    if row.parent_id and get_campaign_row(scoped, row.parent_id).recurrence.get("new_only"):
        earlier = set(
            scoped.scalars(
                select(CampaignRecipient.profile_id)
                .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
                .where(Campaign.parent_id == row.parent_id, Campaign.id != row.id)
            )
        )
        people = [p for p in people if p not in earlier]
    percent = int(row.test["percent"]) if row.test else 100
    rows = [
        (row.id, p, variant_of(row.id, row.variants, p) if percent == 100 or in_test(row.id, percent, p) else WAITING)
        for p in people
    ]
    append_rows(
        scoped,
        CampaignRecipient,
        ("campaign_id", "profile_id", "variant"),
        rows,
        on_conflict=("campaign_id", "profile_id"),
    )
    row.audience, row.frozen = len(people), True
    return len(people)


def _start(scoped: Session, campaign_id: str) -> bool:
    """Launch (or go on with) the campaign; False when there is nothing to do now."""
    row = get_campaign_row(scoped, campaign_id)
    now = utcnow()
    if row.status == "scheduled":
        if row.scheduled_at is not None and row.scheduled_at.timestamp() > now.timestamp() + 1:
            return False  # a job left from an earlier schedule: the current one comes later
        row.status, row.launched_at = "running", now
        row.phase = "test" if row.test else ""
        schedule_checks(scoped, row, now)
    elif row.status != "running":
        return False
    if not row.frozen:
        try:
            freeze_audience(scoped, row)
        except NotFoundError:
            row.status, row.finished_at = "cancelled", now
            row.problem = "the segment was deleted before the campaign started"
            return False
    return True


def _prepare(
    scoped: Session,
    row: Campaign,
    variant: dict[str, Any],
    template_id: str,
    step: str,
    people: list[Recipient],
    links: Links,
    at: datetime | None,
) -> None:
    channel = channels.get_template(scoped, template_id).channel
    utm = {"utm_source": "siyu", "utm_medium": channel, "utm_campaign": row.id, "utm_content": str(variant["key"])}
    minter = LinkMinter(
        links.public_url, links.secret_key, row.workspace_id, source=source_of(row.id), channel=channel, utm=utm
    )
    request = SendRequest(
        source=source_of(row.id),
        step=step,
        template_id=template_id,
        recipients=people,
        campaign={**row.values, **variant.get("values", {}), "id": row.id, "name": row.name, "variant": variant["key"]},
        holdout_id=row.holdout_id,
        at=at,
    )
    channels.prepare(scoped, request, replace(links, shorten=minter, flush=minter.save))


def _send_at(row: Campaign, variant: dict[str, Any]) -> datetime | None:
    """The variant's send time: its delay after the phase began (launch, or the winner's
    choice); None (now) once that has passed."""
    began = row.decided_at if row.phase == "rest" else row.launched_at
    delay = int(variant.get("delay_minutes", 0))
    if not delay or began is None:
        return None
    at = began + timedelta(minutes=delay)
    return at if at > utcnow() else None


def _next_chunk(scoped: Session, row: Campaign, links: Links) -> int:
    stmt = select(CampaignRecipient.profile_id, CampaignRecipient.variant).where(
        CampaignRecipient.campaign_id == row.id, CampaignRecipient.profile_id > row.cursor
    )
    if row.phase == "test":
        stmt = stmt.where(CampaignRecipient.variant != WAITING)
    elif row.phase == "rest":
        stmt = stmt.where(CampaignRecipient.variant == WAITING)
    batch = list(scoped.execute(stmt.order_by(CampaignRecipient.profile_id).limit(CHUNK)))
    if not batch:
        return 0
    by_variant: dict[str, list[Recipient]] = {}
    for profile_id, variant in batch:
        by_variant.setdefault(row.winner if variant == WAITING else variant, []).append(Recipient(profile_id))
    for v in row.variants:
        people = by_variant.get(str(v["key"]))
        chain = [str(v["template_id"]), *(str(t) for t in v.get("fallbacks", []))]
        at = _send_at(row, v)
        for step, template_id in enumerate(chain, start=1):
            if not people:
                break
            _prepare(scoped, row, v, template_id, str(step), people, links, at)
            if step < len(chain):  # who this template cannot reach tries the next
                out_of_reach = channels.unreachable(
                    scoped, f"{source_of(row.id)}:{step}:", [r.profile_id for r in people]
                )
                people = [r for r in people if r.profile_id in out_of_reach]
    row.cursor = batch[-1][0]
    row.prepared += len(batch)
    return len(batch)


def run_campaign(
    db: Database, workspace_id: str, campaign_id: str, links: Links, budget_seconds: float = 240.0
) -> RunReport:
    """Hand the campaign's audience to the ledger, chunk by chunk, until done, paused, cancelled
    or out of time (then the next run is queued)."""
    report = RunReport()
    scope = Scope.workspace(workspace_id)
    with db.transaction(scope) as scoped:
        started = _start(scoped, campaign_id)
        report.status = get_campaign_row(scoped, campaign_id).status
    if not started:
        return report
    began = time.monotonic()
    while True:
        with db.transaction(scope) as scoped:
            row = scoped.scalar(select(Campaign).where(Campaign.id == campaign_id).with_for_update())
            if row is None or row.status != "running":
                report.status = row.status if row else "deleted"
                return report
            done = _next_chunk(scoped, row, links)
            if not done:
                if row.phase == "test":  # the test has gone: the winner is picked later
                    row.status = "testing"
                    enqueue_decision(scoped, row)
                else:
                    row.status, row.finished_at = "completed", utcnow()
                report.status = row.status
                return report
            report.chunks += 1
            report.prepared += done
            if time.monotonic() - began > budget_seconds:
                enqueue_run(scoped, row)
                report.status = row.status
                return report
