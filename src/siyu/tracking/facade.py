"""The tracking domain's public face: minting links for sends, making links and QR codes by
hand, following a short link, and counting clicks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core.clock import ensure_utc
from siyu.tracking import clicks, links, qr
from siyu.tracking.clicks import LinkCounts
from siyu.tracking.links import LinkMinter, LinkPublic, link_to_public
from siyu.tracking.tables import Link, LinkVisitor

__all__ = ["LinkCounts", "LinkMinter", "LinkPublic"]

CODE = links.CODE
create_link = links.create_link
link_row = links.get_link_row
short_url = links.short_url
link_counts = clicks.link_counts
people_who_clicked = clicks.people_who_clicked
qr_image = qr.qr_image
MEDIA_TYPES = qr.MEDIA_TYPES


def clickers(scoped: Session, source: str) -> set[str]:
    """The people who opened a link in the source's messages."""
    stmt = (
        select(Link.profile_id)
        .join(LinkVisitor, LinkVisitor.code == Link.code)
        .where(Link.source == source, Link.kind == "message")
        .distinct()
    )
    return {str(p) for p in scoped.scalars(stmt) if p}


def get_link(scoped: Session, code: str) -> LinkPublic:
    return link_to_public(links.get_link_row(scoped, code))


def list_links(scoped: Session, *, source: str | None = None, limit: int = 200) -> list[LinkPublic]:
    """The links made by hand (QR codes, shared links), newest first."""
    stmt = select(Link).where(Link.kind.in_(("qr", "link")))
    if source:
        stmt = stmt.where(Link.source == source)
    return [link_to_public(r) for r in scoped.scalars(stmt.order_by(Link.created_at.desc()).limit(limit))]


def target_of(system: Session, code: str) -> Link | None:
    """The link a code names, whoever's it is (the redirect, before it knows the workspace)."""
    if not links.CODE.match(code):
        return None
    return system.scalar(select(Link).where(Link.code == code))


record_click = clicks.record_click


def clicks_of(
    scoped: Session, profile_ids: Sequence[str], since: datetime, prefix: str = "campaign:"
) -> list[tuple[str, str, datetime, str]]:
    """(person, source, first click, channel) on links in messages from sources starting with
    ``prefix``, for these people, since ``since``."""
    wanted = set(profile_ids)
    stmt = (
        select(Link.profile_id, Link.source, func.min(LinkVisitor.first_at), Link.channel)
        .join(LinkVisitor, LinkVisitor.code == Link.code)
        .where(Link.kind == "message", Link.source.like(prefix + "%"), LinkVisitor.first_at >= since)
        .group_by(Link.profile_id, Link.source, Link.channel)
    )
    return [(p, src, ensure_utc(at), channel) for p, src, at, channel in scoped.execute(stmt) if p in wanted]
