"""Campaigns, who each one was sent to (its audience frozen at launch, with each person's
variant), and each workspace's campaign settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, JSONType, Timestamped, WorkspaceScoped


class Campaign(WorkspaceScoped, Timestamped, Base):
    """A campaign. ``status``: draft → scheduled (or awaiting_approval → scheduled) → running →
    completed; running ⇄ paused; anything not finished → cancelled.

    ``variants``: ``[{"key": "A", "name": …, "template_id": …, "share": 50}, …]`` — the shares
    (percent) add up to 100. ``prepared`` counts the frozen audience already handed to the
    ledger, in profile id order up to ``cursor``: a run that died goes on from there.

    ``test``: ``{"percent": 20, "metric": "ctr", "hours": 4}`` — test then send the winner: only
    that share of the audience is drawn into the variants (``phase`` test); the rest wait (their
    variant ``*``) until, ``hours`` after launch, a variant is significantly best on the metric
    and becomes the ``winner`` they are sent (``phase`` rest).

    ``recurrence``: ``{"every": "day" | "week", "at": "09:30", "weekdays": [1, 5], "until": …,
    "new_only": true}`` — a recurring campaign is never sent itself: each time it comes round a
    copy (``parent_id`` set) is scheduled, to the segment as it is then."""

    __tablename__ = "campaigns"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_campaigns_workspace_id_status", "workspace_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("cmp_"))
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(20), default="draft")
    segment_id: Mapped[str | None] = mapped_column(String(32), default=None)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    holdout_id: Mapped[str | None] = mapped_column(String(32), default=None)
    # Values the templates read as campaign.* (a coupon code, an activity's name…).
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scheduled_at: Mapped[datetime | None] = mapped_column(default=None)  # None: as soon as scheduled
    # Auto-pause rules: {"min_delivery_rate": 0.8, "max_opt_out_rate": 0.01, "min_sent": 500}.
    guards: Mapped[dict[str, Any]] = mapped_column(default=dict)
    audience: Mapped[int] = mapped_column(Integer, default=0)  # people, estimated, then frozen
    needs_approval: Mapped[bool] = mapped_column(default=False)
    approved_by: Mapped[str | None] = mapped_column(String(32), default=None)
    approved_at: Mapped[datetime | None] = mapped_column(default=None)
    frozen: Mapped[bool] = mapped_column(default=False)  # the audience is in campaign_recipients
    prepared: Mapped[int] = mapped_column(Integer, default=0)
    cursor: Mapped[str] = mapped_column(String(32), default="")
    launched_at: Mapped[datetime | None] = mapped_column(default=None)
    problem: Mapped[str] = mapped_column(String(300), default="")  # why a run stopped short
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    test: Mapped[dict[str, Any]] = mapped_column(default=dict)
    phase: Mapped[str] = mapped_column(String(8), default="")  # "" | test | rest
    winner: Mapped[str] = mapped_column(String(8), default="")
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    recurrence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    parent_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    next_at: Mapped[datetime | None] = mapped_column(default=None)  # a recurring campaign's next time


class CampaignRecipient(WorkspaceScoped, Base):
    """One person of a campaign's frozen audience and the variant they were drawn into."""

    __tablename__ = "campaign_recipients"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by the key instead
    __table_args__ = (Index("ix_campaign_recipients_workspace_id_profile_id", "workspace_id", "profile_id"),)

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    variant: Mapped[str] = mapped_column(String(8))


class CampaignSettings(WorkspaceScoped, Base):
    """A workspace's campaign settings: above ``approval_threshold`` people a campaign waits for
    an admin's approval (the large-send guard); ``costs``: fen per message by channel; an order
    paid within ``window_hours`` after a campaign's message or a click on it converts, credited
    to the last touch before it (``attribution`` last_touch) or the first (first_touch)."""

    __tablename__ = "campaign_settings"
    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    approval_threshold: Mapped[int] = mapped_column(Integer, default=50_000)
    costs: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    window_hours: Mapped[int] = mapped_column(Integer, default=168)
    attribution: Mapped[str] = mapped_column(String(12), default="last_touch")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CampaignCheckpoint(WorkspaceScoped, Base):
    """The campaign's numbers as they stood ``hours`` after launch (3, 6, 12 and 24)."""

    __tablename__ = "campaign_checkpoints"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by the key instead

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    hours: Mapped[int] = mapped_column(Integer, primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
