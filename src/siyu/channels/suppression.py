"""The suppression list: addresses nothing more is sent to on a channel."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from siyu.channels.tables import Suppression
from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.core.pagination import Page
from siyu.identity.contracts import IdentifierKind
from siyu.identity.errors import InvalidIdentifierError
from siyu.identity.normalise import normalise, normalise_phone, wechat_id
from siyu.storage.bulk import append_rows, fetch_rows
from siyu.storage.paging import newest_first


@dataclass(frozen=True)
class SuppressionPublic:
    id: str
    channel: str
    address: str
    reason: str
    source: str
    created_by: str | None
    created_at: datetime


def suppress_addresses(
    scoped: Session, entries: Sequence[tuple[str, str, str]], *, source: str, actor_id: str | None = None
) -> int:
    """Add (channel, address, reason) entries; an address already suppressed stays as it was.
    Returns how many were new."""
    now = utcnow()
    rows = [(new_id("sup_"), ch, addr, reason[:300], source[:100], actor_id, now) for ch, addr, reason in entries]
    return append_rows(
        scoped,
        Suppression,
        ("id", "channel", "address", "reason", "source", "created_by", "created_at"),
        rows,
        on_conflict=("workspace_id", "channel", "address"),
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def suppression_address(channel: str, address: str) -> str:
    """An address as the suppression list keeps it — phones and emails normalised, WeChat and
    WeCom ids checked — or InvalidIdentifierError saying why it cannot be one."""
    value = address.strip()
    if channel == "sms":
        phone = normalise_phone(value, "")
        if phone.weak:
            raise InvalidIdentifierError(f"{value!r} is masked: give the whole number")
        return phone.value
    if channel == "email":
        return normalise(IdentifierKind.EMAIL, value).value
    if channel in ("wechat_oa", "miniprogram"):
        return wechat_id(IdentifierKind.OPENID, value)
    if channel == "wecom":
        return wechat_id(IdentifierKind.WECOM_EXTERNAL_USERID, value)
    if not value or _CONTROL.search(value):
        raise InvalidIdentifierError(f"{value!r} is not an address")
    return value


def suppressed(scoped: Session, channel: str, addresses: Iterable[str]) -> set[str]:
    """Which of ``addresses`` are suppressed on ``channel`` (read in bulk): the channel's whole
    list when it is the shorter read, else a lookup per address."""
    wanted = set(addresses)
    if not wanted:
        return set()
    listed = scoped.scalar(select(func.count()).select_from(Suppression).where(Suppression.channel == channel))
    if (listed or 0) <= len(wanted):
        return wanted.intersection(scoped.scalars(select(Suppression.address).where(Suppression.channel == channel)))
    rows = fetch_rows(scoped, Suppression, ("address", "channel"), "address", wanted)
    return {a for a, ch in rows if ch == channel}


def list_suppressions(
    scoped: Session, channel: str | None = None, query: str = "", cursor: str | None = None, limit: int = 50
) -> Page[SuppressionPublic]:
    stmt = select(Suppression)
    if channel:
        stmt = stmt.where(Suppression.channel == channel)
    if query:
        stmt = stmt.where(Suppression.address.contains(query))
    return newest_first(
        scoped,
        stmt,
        Suppression.id,
        cursor=cursor,
        limit=limit,
        convert=lambda r: SuppressionPublic(r.id, r.channel, r.address, r.reason, r.source, r.created_by, r.created_at),
    )


def count_suppressions(scoped: Session) -> dict[str, int]:
    return {
        ch: int(n) for ch, n in scoped.execute(select(Suppression.channel, func.count()).group_by(Suppression.channel))
    }


def remove_suppression(scoped: Session, suppression_id: str) -> bool:
    return bool(scoped.execute(delete(Suppression).where(Suppression.id == suppression_id)).rowcount)  # type: ignore[attr-defined]
