"""The tag library: categories (a tree), tags with their kind and definition, each tag's
change history and its daily coverage."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, Timestamped, WorkspaceScoped


class TagCategory(WorkspaceScoped, Timestamped, Base):
    __tablename__ = "tag_categories"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (UniqueConstraint("workspace_id", "parent_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("tgc_"))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("tag_categories.id", ondelete="RESTRICT"), default=None)
    name: Mapped[str] = mapped_column(String(60))
    position: Mapped[int] = mapped_column(Integer, default=0)


class Tag(WorkspaceScoped, Timestamped, Base):
    """A tag. ``kind``: manual (put on by hand or import), rule (everyone ``rule`` selects, each
    batch run), computed (everyone with a value of ``computed.source``, the value kept)."""

    __tablename__ = "tags"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("tg_"))
    category_id: Mapped[str | None] = mapped_column(ForeignKey("tag_categories.id", ondelete="RESTRICT"), default=None)
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(500), default="")
    owner: Mapped[str] = mapped_column(String(100), default="")
    kind: Mapped[str] = mapped_column(String(10))  # manual | rule | computed
    rule: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    computed: Mapped[dict[str, Any] | None] = mapped_column(default=None)  # {"source": …}
    people: Mapped[int] = mapped_column(Integer, default=0)
    evaluated_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)


class TagChange(WorkspaceScoped, Base):
    """Someone got or lost a tag (or a computed tag's value changed): by whom or which run."""

    __tablename__ = "tag_changes"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_tag_changes_workspace_id_tag_id_at", "workspace_id", "tag_id", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("tgx_"))
    tag_id: Mapped[str] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"))
    profile_id: Mapped[str] = mapped_column(String(32))
    change: Mapped[str] = mapped_column(String(10))  # added | removed | changed
    value: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(32), default=None)
    run_id: Mapped[str | None] = mapped_column(String(32), default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class TagCoverage(WorkspaceScoped, Base):
    """How many people had the tag at the end of a day (workspace time zone), and how many got
    and lost it that day: the tag's trend."""

    __tablename__ = "tag_coverage"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_tag_coverage_workspace_id_tag_id", "workspace_id", "tag_id"),)

    tag_id: Mapped[str] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    people: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    of_everyone: Mapped[int] = mapped_column(Integer, default=0)  # the workspace's people that day
