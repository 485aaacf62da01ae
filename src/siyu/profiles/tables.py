"""Profile table. Traits carry the latest value per key; provenance and history come with ingest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, Timestamped, WorkspaceScoped


class Profile(WorkspaceScoped, Timestamped, Base):
    __tablename__ = "profiles"
    __table_args__ = (Index("ix_profiles_workspace_id_created_at", "workspace_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("pf_"))
    display_name: Mapped[str | None] = mapped_column(String(200), default=None)
    traits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
