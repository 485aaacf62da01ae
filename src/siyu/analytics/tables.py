"""Batch analytics tables: each workspace's settings, the run log, and the results written back
for the rest of siyu (segments, tags, journeys, the profile page) to read."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, JSONType, WorkspaceScoped


class AnalyticsSettings(WorkspaceScoped, Base):
    """A workspace's own RFM model and run schedule (none stored: the defaults)."""

    __tablename__ = "analytics_settings"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (UniqueConstraint("workspace_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("ans_"))
    rfm: Mapped[dict[str, Any]] = mapped_column(default=dict)
    lifecycle: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the stage model
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)  # CLV horizon, price bands
    leads: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the lead scoring model
    # When the batch runs, as cron in the workspace's time zone; empty: only on demand.
    schedule: Mapped[str | None] = mapped_column(String(120), default=None)
    updated_by: Mapped[str | None] = mapped_column(String(32), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnalyticsRun(WorkspaceScoped, Base):
    """One batch run: what it did step by step (name, milliseconds, rows), how it ended."""

    __tablename__ = "analytics_runs"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_analytics_runs_workspace_id_requested_at", "workspace_id", "requested_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("anr_"))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done | failed
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # manual | schedule
    # full: every step; segments: the snapshots brought up to date and the segments refreshed,
    # the other results kept as the last full run left them.
    scope: Mapped[str] = mapped_column(String(10), default="full", server_default="full")
    requested_by: Mapped[str | None] = mapped_column(String(32), default=None)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # The moment the results describe (recency counts days up to it).
    as_of: Mapped[datetime | None] = mapped_column(default=None)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(2000), default=None)


class ProfileRfm(WorkspaceScoped, Base):
    """A person's RFM as of the last run that changed it: one row per person with a purchase.
    Recency is not kept as days (that would change every row every day): it is the time since
    ``last_purchase_at``; the scores are those of the run."""

    __tablename__ = "profile_rfm"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_profile_rfm_workspace_id_rfm_group", "workspace_id", "rfm_group"),)

    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_purchase_at: Mapped[datetime] = mapped_column()
    frequency: Mapped[int] = mapped_column(Integer)
    monetary_fen: Mapped[int] = mapped_column(BigInteger)
    r_score: Mapped[int] = mapped_column(Integer)
    f_score: Mapped[int] = mapped_column(Integer)
    m_score: Mapped[int] = mapped_column(Integer)
    rfm_group: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str] = mapped_column(String(32))


class ProfileLifecycle(WorkspaceScoped, Base):
    """A person's lifecycle stage, since the run that put them there, and the stage before."""

    __tablename__ = "profile_lifecycle"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_profile_lifecycle_workspace_id_stage", "workspace_id", "stage"),)

    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    stage: Mapped[str] = mapped_column(String(32))
    previous_stage: Mapped[str | None] = mapped_column(String(32), default=None)
    since: Mapped[datetime] = mapped_column()
    run_id: Mapped[str] = mapped_column(String(32))


class ProfileClv(WorkspaceScoped, Base):
    """A buyer's lifetime value by the last run's BG/NBD and Gamma-Gamma fit: the probability they
    still buy, purchases expected over the horizon, and the value of those purchases."""

    __tablename__ = "profile_clv"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_profile_clv_workspace_id_expected_value_fen", "workspace_id", "expected_value_fen"),)

    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    p_alive: Mapped[float] = mapped_column(Float)
    expected_purchases: Mapped[float] = mapped_column(Float)
    expected_value_fen: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[str] = mapped_column(String(32))


class ProfilePreferences(WorkspaceScoped, Base):
    """What a buyer tends to buy, where, for how much and when, and when they will likely buy next."""

    __tablename__ = "profile_preferences"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_profile_preferences_workspace_id_top_category", "workspace_id", "top_category"),)

    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    top_category: Mapped[str | None] = mapped_column(String(100), default=None)
    top_brand: Mapped[str | None] = mapped_column(String(100), default=None)
    price_band: Mapped[str | None] = mapped_column(String(20), default=None)
    top_platform: Mapped[str | None] = mapped_column(String(20), default=None)
    top_hour: Mapped[int | None] = mapped_column(Integer, default=None)  # local hour of day, 0–23
    median_interval_days: Mapped[float | None] = mapped_column(Float, default=None)
    next_purchase_day: Mapped[date | None] = mapped_column(Date, default=None)
    run_id: Mapped[str] = mapped_column(String(32))


class ProfileLeadScore(WorkspaceScoped, Base):
    """A person's lead score (points for what they did, fading with time) and grade."""

    __tablename__ = "profile_lead_scores"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_profile_lead_scores_workspace_id_grade", "workspace_id", "grade"),)

    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    grade: Mapped[str] = mapped_column(String(20))
    run_id: Mapped[str] = mapped_column(String(32))
