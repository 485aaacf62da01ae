"""The event log: append-only, idempotent on (workspace, messageId)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, WorkspaceScoped


class Event(WorkspaceScoped, Base):
    __tablename__ = "events"
    # Lookups here lead with workspace_id in composite indexes; a lone workspace_id index only
    # tempts PostgreSQL into scanning a whole workspace while its statistics lag a fast load.
    workspace_id: Mapped[str] = mapped_column(String(32))
    __table_args__ = (
        UniqueConstraint("workspace_id", "message_id"),
        Index("ix_events_workspace_id_timestamp", "workspace_id", "timestamp"),
        Index("ix_events_workspace_id_event", "workspace_id", "event"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("evt_"))
    message_id: Mapped[str] = mapped_column(String(100))
    # track, identify, page, screen, group, alias
    type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(200), default=None)
    anonymous_id: Mapped[str | None] = mapped_column(String(200), default=None)
    user_id: Mapped[str | None] = mapped_column(String(200), default=None)
    # The strongest identifier the event carried; its profile is the event's person. Not a
    # foreign key: identities are never deleted, and the event log takes tens of thousands of
    # rows a second, where PostgreSQL's check would lock the identity row of every one of them
    # (about half the cost of the insert).
    identity_id: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    traits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    group_id: Mapped[str | None] = mapped_column(String(200), default=None)
    previous_id: Mapped[str | None] = mapped_column(String(200), default=None)
    timestamp: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # An event siyu derived itself (a segment entered, a tag added, a lifecycle stage changed),
    # not something the person did: counted apart from their behaviour.
    derived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
