"""Segments, who is in each, and each segment's size day by day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, Timestamped, WorkspaceScoped


class Segment(WorkspaceScoped, Timestamped, Base):
    """A segment. ``kind``: dynamic (everyone ``rule`` selects, kept current by every batch run)
    or static (the people it was given or frozen with, which no run changes)."""

    __tablename__ = "segments"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("sg_"))
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(String(500), default="")
    kind: Mapped[str] = mapped_column(String(10))  # dynamic | static
    rule: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # A static snapshot: the segment it was frozen from, and when.
    frozen_from: Mapped[str | None] = mapped_column(String(32), default=None)
    people: Mapped[int] = mapped_column(Integer, default=0)
    refreshed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)


class SegmentMember(WorkspaceScoped, Base):
    __tablename__ = "segment_members"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_segment_members_workspace_id_profile_id", "workspace_id", "profile_id"),)

    segment_id: Mapped[str] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True)
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)


class SegmentSize(WorkspaceScoped, Base):
    """How many people were in the segment at the end of a day (workspace time zone), and how
    many entered and left it that day: its trend."""

    __tablename__ = "segment_sizes"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_segment_sizes_workspace_id_segment_id", "workspace_id", "segment_id"),)

    segment_id: Mapped[str] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    people: Mapped[int] = mapped_column(Integer, default=0)
    entered: Mapped[int] = mapped_column(Integer, default=0)
    exited: Mapped[int] = mapped_column(Integer, default=0)


class Holdout(WorkspaceScoped, Timestamped, Base):
    """People set aside so the effect of messages can be measured against them: the workspace's
    global control group (``kind`` global, at most one) or a holdout for one use (a campaign, a
    journey). Who is in it is worked out, not stored: everyone whose bucket for ``seed`` is
    below ``share_bp`` (hundredths of a percent), so a person stays in it while the seed does,
    and raising the share only adds people."""

    __tablename__ = "holdouts"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("ho_"))
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(10))  # global | use
    description: Mapped[str] = mapped_column(String(500), default="")
    share_bp: Mapped[int] = mapped_column(Integer)
    seed: Mapped[str] = mapped_column(String(60))
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
