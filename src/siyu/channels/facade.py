"""The channels domain's public face. Senders (campaigns, journeys, playbooks, the console's
test send) hand in :class:`~siyu.channels.ledger.MessageIn` values; the ledger writes each once
by key and the dispatcher sends it at most once. Everything else here reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.ledger import MessageIn, write_messages
from siyu.channels.receipts import receipts_of
from siyu.channels.scheduling import schedule_dispatch
from siyu.channels.tables import Message
from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError
from siyu.core.pagination import Page
from siyu.profiles.masking import mask_email, mask_phone
from siyu.storage.paging import newest_first


@dataclass(frozen=True)
class SendReport:
    written: int  # new messages
    repeated: int  # keys already in the ledger: nothing new written


def send_messages(scoped: Session, items: Sequence[MessageIn]) -> SendReport:
    """Write the messages into the ledger and have them dispatched. In the caller's
    transaction: the messages and their dispatch commit together, or neither does."""
    now = utcnow()
    written = write_messages(scoped, items, now)
    due = [m.not_before or now for m in items if not m.skipped]
    if due:
        schedule_dispatch(scoped, max(min(due), now))
    return SendReport(written=written, repeated=len(items) - written)


@dataclass(frozen=True)
class ReceiptPublic:
    kind: str
    at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class MessagePublic:
    id: str
    key: str
    channel: str
    kind: str
    account_id: str | None
    profile_id: str | None
    address: str
    template_id: str | None
    content: dict[str, Any]
    source: str
    status: str
    reason: str
    attempts: int
    provider_id: str
    parts: int
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    receipts: tuple[ReceiptPublic, ...] = ()


def mask_address(channel: str, address: str) -> str:
    if channel == "sms":
        return mask_phone(address)
    if channel == "email":
        return mask_email(address)
    return address


def _public(row: Message, mask: bool, receipts: tuple[ReceiptPublic, ...] = ()) -> MessagePublic:
    return MessagePublic(
        id=row.id,
        key=row.key,
        channel=row.channel,
        kind=row.kind,
        account_id=row.account_id,
        profile_id=row.profile_id,
        address=mask_address(row.channel, row.address) if mask else row.address,
        template_id=row.template_id,
        content=dict(row.content or {}),
        source=row.source,
        status=row.status,
        reason=row.reason,
        attempts=row.attempts,
        provider_id=row.provider_id,
        parts=row.parts,
        created_at=row.created_at,
        sent_at=row.sent_at,
        delivered_at=row.delivered_at,
        receipts=receipts,
    )


def list_messages(
    scoped: Session,
    *,
    mask: bool,
    channel: str | None = None,
    status: str | None = None,
    source: str | None = None,
    profile_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[MessagePublic]:
    stmt = select(Message)
    for column, value in (
        (Message.channel, channel),
        (Message.status, status),
        (Message.source, source),
        (Message.profile_id, profile_id),
    ):
        if value:
            stmt = stmt.where(column == value)
    return newest_first(scoped, stmt, Message.id, cursor=cursor, limit=limit, convert=lambda r: _public(r, mask))


def get_message(scoped: Session, message_id: str, *, mask: bool) -> MessagePublic:
    row = scoped.get(Message, message_id)
    if row is None:
        raise NotFoundError(f"no message {message_id}")
    receipts = tuple(ReceiptPublic(r.kind, r.at, dict(r.detail or {})) for r in receipts_of(scoped, message_id))
    return _public(row, mask, receipts)
