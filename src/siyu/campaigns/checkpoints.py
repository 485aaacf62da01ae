"""Checkpoints and auto-pause: the campaign's numbers — sent, delivered, clicked, opt-outs and
the orders it earned so far — kept as they stood 3, 6, 12 and 24 hours after launch, and its
guards — a delivery rate below, or an opt-out rate above, what the campaign allows — checked at
those times and in its first hour, pausing it when broken."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.campaigns.attribution import attribute
from siyu.campaigns.library import campaign_settings, get_campaign_row, source_of
from siyu.campaigns.lifecycle import QUEUE
from siyu.campaigns.tables import Campaign, CampaignCheckpoint
from siyu.channels import facade as channels
from siyu.core.clock import utcnow
from siyu.jobs.contracts import JobSpec
from siyu.jobs.queue import enqueue_many
from siyu.storage.bulk import append_rows
from siyu.storage.scoping import require_workspace
from siyu.tracking import facade as tracking

CHECKPOINT_TASK = "campaigns.checkpoint"
CHECKPOINT_HOURS = (3, 6, 12, 24)
EARLY_CHECKS_MINUTES = (10, 30, 60)  # guards only
DEFAULT_MIN_SENT = 500
WENT_OUT = channels.WENT_OUT


@dataclass(frozen=True)
class Metrics:
    sent: int
    delivered: int
    undelivered: int
    clicked: int
    opt_outs: int

    @property
    def delivery_rate(self) -> float | None:
        """Of the messages whose receipt came back, the share delivered."""
        known = self.delivered + self.undelivered
        return self.delivered / known if known else None

    @property
    def opt_out_rate(self) -> float:
        return self.opt_outs / self.sent if self.sent else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "undelivered": self.undelivered,
            "clicked": self.clicked,
            "opt_outs": self.opt_outs,
            "delivery_rate": self.delivery_rate,
            "click_rate": self.clicked / self.sent if self.sent else 0.0,
            "opt_out_rate": self.opt_out_rate,
        }


def metrics(scoped: Session, campaign_id: str) -> Metrics:
    source = source_of(campaign_id)
    statuses = channels.source_summary(scoped, source).statuses
    return Metrics(
        sum(statuses.get(s, 0) for s in WENT_OUT),
        statuses.get("delivered", 0),
        statuses.get("undelivered", 0),
        tracking.people_who_clicked(scoped, source),
        channels.opt_outs(scoped, source),
    )


def schedule_checks(scoped: Session, row: Campaign, launched_at: datetime) -> None:
    """The campaign's checkpoints and early guard checks, as jobs (one each, however often asked)."""
    workspace_id = require_workspace(scoped)
    at = [(launched_at + timedelta(hours=h), h * 60, True) for h in CHECKPOINT_HOURS]
    at += [(launched_at + timedelta(minutes=m), m, False) for m in EARLY_CHECKS_MINUTES]
    enqueue_many(
        scoped,
        [
            JobSpec(
                CHECKPOINT_TASK,
                {"campaign_id": row.id, "minutes": minutes, "snapshot": snapshot},
                run_at=when,
                workspace_id=workspace_id,
                queue=QUEUE,
                idempotency_key=f"{CHECKPOINT_TASK}:{row.id}:{minutes}",
            )
            for when, minutes, snapshot in at
        ],
    )


def conversions(scoped: Session, row: Campaign) -> dict[str, int]:
    """The orders the campaign earned so far (attributed as the report does): people, orders and
    revenue in fen."""
    if row.launched_at is None:
        return {"converted": 0, "orders": 0, "revenue_fen": 0}
    settings = campaign_settings(scoped)
    status = channels.statuses_by_profile(scoped, source_of(row.id))
    reached = {p: "all" for p, (state, _) in status.items() if state in WENT_OUT}
    credit = attribute(
        scoped,
        source=source_of(row.id),
        launched_at=row.launched_at,
        variant_of=reached,
        held_out=[],
        window=timedelta(hours=settings.window_hours),
        model=settings.attribution,
    ).by_variant.get("all")
    if credit is None:
        return {"converted": 0, "orders": 0, "revenue_fen": 0}
    return {"converted": len(credit.people), "orders": credit.orders, "revenue_fen": credit.revenue_fen}


def broken_guard(row: Campaign, m: Metrics) -> str | None:
    """Why the campaign's guards say stop, if they do."""
    guards = row.guards or {}
    if m.sent < int(guards.get("min_sent", DEFAULT_MIN_SENT)):
        return None
    floor = guards.get("min_delivery_rate")
    if floor is not None and m.delivery_rate is not None and m.delivery_rate < float(floor):
        return f"delivery rate {m.delivery_rate:.1%} is below {float(floor):.1%}"
    ceiling = guards.get("max_opt_out_rate")
    if ceiling is not None and m.opt_out_rate > float(ceiling):
        return f"opt-out rate {m.opt_out_rate:.2%} is above {float(ceiling):.2%}"
    return None


def check(scoped: Session, campaign_id: str, minutes: int, snapshot: bool) -> str | None:
    """Take the checkpoint (when it is one) and apply the guards; returns why it paused, if it did."""
    row = get_campaign_row(scoped, campaign_id)
    m = metrics(scoped, campaign_id)
    if snapshot:
        append_rows(
            scoped,
            CampaignCheckpoint,
            ("campaign_id", "hours", "taken_at", "metrics"),
            [(campaign_id, minutes // 60, utcnow(), m.as_dict() | conversions(scoped, row))],
            on_conflict=("campaign_id", "hours"),
        )
    if row.status not in ("running", "testing", "completed"):
        return None
    why = broken_guard(row, m)
    if why is None:
        return None
    waiting = channels.hold_source(scoped, source_of(row.id))
    if row.status == "completed" and not waiting:
        return None  # everything has gone: nothing left to stop
    row.status = "paused"
    row.problem = f"paused automatically {minutes} minutes after launch: {why}"
    scoped.flush()
    return row.problem


@dataclass(frozen=True)
class CheckpointPublic:
    hours: int
    taken_at: datetime
    metrics: dict[str, Any]


def checkpoints(scoped: Session, campaign_id: str) -> list[CheckpointPublic]:
    get_campaign_row(scoped, campaign_id)
    rows = scoped.scalars(
        select(CampaignCheckpoint)
        .where(CampaignCheckpoint.campaign_id == campaign_id)
        .order_by(CampaignCheckpoint.hours)
    )
    return [CheckpointPublic(r.hours, r.taken_at, dict(r.metrics)) for r in rows]
