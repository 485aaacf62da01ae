"""Short links and the clicks on them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, WorkspaceScoped


class Link(WorkspaceScoped, Base):
    """A short link ``/s/<code>``. ``kind``: message (one person's link in one message, its code
    drawn from the message's key so preparing it again gives the same code), qr (a printed or
    shown code: a package insert, a poster, a store counter) or link (shared anywhere). The code
    is unique across workspaces: the redirect finds a link before it knows whose it is."""

    __tablename__ = "links"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (
        Index("ix_links_workspace_id_source", "workspace_id", "source"),
        Index("ix_links_workspace_id_kind_created_at", "workspace_id", "kind", "created_at"),
    )

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    target: Mapped[str] = mapped_column(String(2000))
    name: Mapped[str] = mapped_column(String(80), default="")
    source: Mapped[str] = mapped_column(String(100), default="")  # campaign:cmp_…, or empty
    channel: Mapped[str] = mapped_column(String(20), default="")
    message_key: Mapped[str] = mapped_column(String(200), default="")
    profile_id: Mapped[str | None] = mapped_column(String(32), default=None)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LinkClick(WorkspaceScoped, Base):
    """One request for a short link. ``visitor``: a keyed hash of the client's address and
    browser (who they are is not kept); ``bot``: a crawler or a chat app's link preview;
    ``counted``: the visitor's first click on the link (a replay or a second tap counts once)."""

    __tablename__ = "link_clicks"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_link_clicks_workspace_id_code_at", "workspace_id", "code", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("lc_"))
    code: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    visitor: Mapped[str] = mapped_column(String(32))
    bot: Mapped[bool] = mapped_column(Boolean, default=False)
    counted: Mapped[bool] = mapped_column(Boolean, default=False)
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class LinkVisitor(WorkspaceScoped, Base):
    """Each person (visitor) who opened a link, once: what clicks are counted by. Written with
    the first click, and only then, however often the request is replayed."""

    __tablename__ = "link_visitors"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by the key instead

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    visitor: Mapped[str] = mapped_column(String(32), primary_key=True)
    first_at: Mapped[datetime] = mapped_column(default=utcnow)
