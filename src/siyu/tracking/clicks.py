"""Clicks and scans: each request for a short link is logged; a person's first one counts, a
replay or a second tap does not; crawlers and chat apps' link previews never count."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from siyu.storage.bulk import append_rows
from siyu.tracking.tables import Link, LinkClick, LinkVisitor

# Crawlers, link previews (chat apps fetch a link to show its card), monitors and HTTP libraries.
BOT = re.compile(
    r"bot\b|bot/|spider|crawl|slurp|preview|facebookexternalhit|embedly|whatsapp|telegram|discord|skype|"
    r"vkshare|headless|phantomjs|curl/|wget/|python-|go-http-client|java/|okhttp|libwww|httpclient|scrapy|"
    r"bytespider|baiduspider|yisouspider|sogou|360spider|petalbot|feedfetcher|pingdom|uptime|monitor",
    re.IGNORECASE,
)


def is_bot(user_agent: str) -> bool:
    return not user_agent.strip() or BOT.search(user_agent) is not None


def visitor_of(secret_key: str, ip: str, user_agent: str) -> str:
    """Who clicked, as a keyed hash: the same person on the same device gets the same value,
    and the address is not kept."""
    mac = hmac.new(secret_key.encode(), f"visitor|{ip}|{user_agent}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def record_click(scoped: Session, link: Link, *, ip: str, user_agent: str, secret_key: str, at: datetime) -> bool:
    """Log one request for the link; True when it counts (a person's first)."""
    bot = is_bot(user_agent)
    visitor = visitor_of(secret_key, ip, user_agent)
    counted = (
        not bot
        and append_rows(
            scoped,
            LinkVisitor,
            ("code", "visitor", "first_at"),
            [(link.code, visitor, at)],
            on_conflict=("code", "visitor"),
        )
        == 1
    )
    scoped.add(LinkClick(code=link.code, at=at, visitor=visitor, bot=bot, counted=counted, user_agent=user_agent[:300]))
    scoped.flush()
    return counted


@dataclass(frozen=True)
class LinkCounts:
    requests: int  # every request, bots and replays included
    clicks: int  # counted: each person once
    bots: int


def link_counts(scoped: Session, codes: list[str]) -> dict[str, LinkCounts]:
    if not codes:
        return {}
    rows = scoped.execute(
        select(
            LinkClick.code,
            func.count(),
            func.sum(case((LinkClick.counted, 1), else_=0)),
            func.sum(case((LinkClick.bot, 1), else_=0)),
        )
        .where(LinkClick.code.in_(codes))
        .group_by(LinkClick.code)
    )
    found = {code: LinkCounts(int(n), int(counted or 0), int(bots or 0)) for code, n, counted, bots in rows}
    return {c: found.get(c, LinkCounts(0, 0, 0)) for c in codes}


def people_who_clicked(scoped: Session, source: str) -> int:
    """How many people opened a link in the source's messages (each once)."""
    stmt = (
        select(func.count(func.distinct(Link.profile_id)))
        .select_from(Link)
        .join(LinkVisitor, LinkVisitor.code == Link.code)
        .where(Link.source == source, Link.kind == "message")
    )
    return int(scoped.scalar(stmt) or 0)
