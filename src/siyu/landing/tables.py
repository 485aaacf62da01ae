"""Landing pages, each published version of them, their visits and the forms sent on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, Timestamped, WorkspaceScoped


class LandingPage(WorkspaceScoped, Timestamped, Base):
    """A landing page at ``/p/<code>``. ``content`` is the draft being edited; what visitors see
    is the published ``version`` (0: never published). ``status``: draft, published or
    archived (its address then answers 404). The code is unique across workspaces: the public
    address finds a page before it knows whose it is."""

    __tablename__ = "landing_pages"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_landing_pages_workspace_id_status", "workspace_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("lp_"))
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    layout: Mapped[str] = mapped_column(String(20))
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)


class LandingPageVersion(WorkspaceScoped, Base):
    """A page as it was published: what a visitor saw, the consent text word for word included,
    so every consent given on it can be traced to the text the person agreed to."""

    __tablename__ = "landing_page_versions"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by the key instead

    page_id: Mapped[str] = mapped_column(ForeignKey("landing_pages.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    layout: Mapped[str] = mapped_column(String(20))
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by: Mapped[str | None] = mapped_column(String(32), default=None)


class LandingVisit(WorkspaceScoped, Base):
    """One request for a page. ``visitor``: a keyed hash of address and browser; ``bot``: a
    crawler or link preview; the campaign and variant come from the UTM parameters its tracked
    link added."""

    __tablename__ = "landing_visits"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_landing_visits_workspace_id_page_id_at", "workspace_id", "page_id", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("lv_"))
    page_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    visitor: Mapped[str] = mapped_column(String(32))
    bot: Mapped[bool] = mapped_column(Boolean, default=False)
    utm_campaign: Mapped[str] = mapped_column(String(100), default="")
    utm_content: Mapped[str] = mapped_column(String(100), default="")


class LandingSubmission(WorkspaceScoped, Base):
    """A form sent on a page: the person it was filed under, the version (and so the consent
    text) they saw. ``token`` was handed out with the form: a replayed request finds it taken
    and is stored once."""

    __tablename__ = "landing_submissions"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (
        UniqueConstraint("page_id", "token", name="uq_landing_submissions_page_id_token"),
        Index("ix_landing_submissions_workspace_id_page_id_at", "workspace_id", "page_id", "at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("ls_"))
    page_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(64))
    identity_id: Mapped[str] = mapped_column(String(32))
    profile_id: Mapped[str | None] = mapped_column(String(32), default=None)
    visitor: Mapped[str] = mapped_column(String(32))
    utm_campaign: Mapped[str] = mapped_column(String(100), default="")
    utm_content: Mapped[str] = mapped_column(String(100), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
