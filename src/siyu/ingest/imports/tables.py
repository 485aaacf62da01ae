"""Imports and their rejected rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, WorkspaceScoped


class Import(WorkspaceScoped, Base):
    __tablename__ = "imports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("imp_"))
    filename: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    preset: Mapped[str] = mapped_column(String(20))
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)  # platform, buyer_kind, mapping
    status: Mapped[str] = mapped_column(String(12), default="queued")  # queued|running|done|failed
    total: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class ImportRejection(WorkspaceScoped, Base):
    __tablename__ = "import_rejections"
    __table_args__ = (Index("ix_import_rejections_import_id_row_number", "import_id", "row_number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("irj_"))
    import_id: Mapped[str] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
