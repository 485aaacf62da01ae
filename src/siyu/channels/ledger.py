"""The send ledger: messages are written once by key, claimed with a lease by a dispatcher,
and closed with what the adapter answered. A claim whose dispatcher died (kill -9) lapses at
its lease end and the message is claimed again; a closed message is never claimed again."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from siyu.channels.contracts import ChannelKind, Content, MessageKind, OutboundMessage
from siyu.channels.policy import SkipReason
from siyu.channels.retries import Decision, Done, RetryLater
from siyu.channels.tables import Message
from siyu.core.ids import new_id
from siyu.storage.bulk import append_rows, claim_due_rows, update_rows
from siyu.storage.scoping import require_workspace

QUEUED, SENDING, SENT, DELIVERED, UNDELIVERED, FAILED, SKIPPED, HELD = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "skipped",
    "held",  # queued, but its source is paused: not sent until released
)
STATUSES = (QUEUED, SENDING, SENT, DELIVERED, UNDELIVERED, FAILED, SKIPPED, HELD)
WENT_OUT = (SENT, DELIVERED, UNDELIVERED)  # the provider took it


@dataclass(frozen=True)
class MessageIn:
    """A message to write into the ledger. ``key`` names it for its source — the same key
    twice is the same message, written once. ``skipped``: a reason it will not be sent (the
    send policy's), recorded instead of sending."""

    key: str
    channel: ChannelKind
    kind: MessageKind
    address: str
    content: Content
    account_id: str | None
    profile_id: str | None = None
    template_id: str | None = None
    source: str = ""
    not_before: datetime | None = None
    skipped: str = ""


@dataclass(frozen=True)
class ClaimedMessage:
    message: OutboundMessage
    account_id: str | None
    attempt: int
    # The claim lapsed while its dispatcher was handing it to the provider: it may have arrived.
    in_doubt: bool = False


_COLUMNS = (
    "id",
    "key",
    "channel",
    "kind",
    "account_id",
    "profile_id",
    "address",
    "template_id",
    "content",
    "source",
    "status",
    "reason",
    "attempts",
    "not_before",
    "provider_id",
    "parts",
    "created_at",
    "updated_at",
)


_CONTENT_PARTS = tuple(f.name for f in dataclasses.fields(Content))


def content_to_dict(content: Content) -> dict[str, Any]:
    """The parts a message has, as stored (its dicts as they are: they are encoded at once)."""
    return {name: value for name in _CONTENT_PARTS if (value := getattr(content, name))}


def content_from_dict(data: dict[str, Any]) -> Content:
    return Content(**data)


def write_messages(scoped: Session, items: Sequence[MessageIn], now: datetime) -> int:
    """Write the messages whose keys are new; returns how many were new."""
    rows = [
        (
            new_id("msg_"),
            m.key,
            m.channel.value,
            m.kind.value,
            m.account_id,
            m.profile_id,
            m.address,
            m.template_id,
            content_to_dict(m.content),
            m.source,
            SKIPPED if m.skipped else QUEUED,
            m.skipped[:300],
            0,
            m.not_before or now,
            "",
            0,
            now,
            now,
        )
        for m in items
    ]
    return append_rows(scoped, Message, _COLUMNS, rows, on_conflict=("workspace_id", "key"))


@dataclass(frozen=True)
class MessageBatch:
    """The messages of one send, column by column: all alike but for the person. Written as
    ``write_messages`` writes each ``MessageIn``, without a million of them made first."""

    channel: ChannelKind
    kind: MessageKind
    account_id: str | None
    template_id: str | None
    source: str
    not_before: datetime
    keys: Sequence[str]
    addresses: Sequence[str]
    contents: Sequence[Mapping[str, Any]]  # as stored (``content_to_dict``)
    profile_ids: Sequence[str]
    skipped: Sequence[str]  # "" for a message to send


def write_batch(scoped: Session, batch: MessageBatch, now: datetime) -> int:
    """Write the batch's messages whose keys are new; returns how many were new."""
    channel, kind = batch.channel.value, batch.kind.value
    rows = [
        (
            new_id("msg_"),
            key,
            channel,
            kind,
            batch.account_id,
            profile_id,
            address,
            batch.template_id,
            content,
            batch.source,
            SKIPPED if skipped else QUEUED,
            skipped[:300],
            0,
            batch.not_before,
            "",
            0,
            now,
            now,
        )
        for key, address, content, profile_id, skipped in zip(
            batch.keys, batch.addresses, batch.contents, batch.profile_ids, batch.skipped, strict=True
        )
    ]
    return append_rows(scoped, Message, _COLUMNS, rows, on_conflict=("workspace_id", "key"))


def claim_due(scoped: Session, limit: int, lease_seconds: float, now: datetime) -> list[ClaimedMessage]:
    """Lease up to ``limit`` messages that are due (queued, or sending with a lapsed lease)."""
    workspace_id = require_workspace(scoped)
    rows = claim_due_rows(
        scoped,
        Message,
        statuses=(QUEUED, SENDING),
        due_column="not_before",
        now=now,
        limit=limit,
        claimed_status=SENDING,
        lease_until=now + timedelta(seconds=lease_seconds),
        returning=("id", "channel", "kind", "address", "content", "profile_id", "account_id", "attempts", "handed_at"),
    )
    channels = {c.value: c for c in ChannelKind}
    kinds = {k.value: k for k in MessageKind}
    return [
        ClaimedMessage(
            OutboundMessage(
                id=mid,
                workspace_id=workspace_id,
                channel=channels[channel],
                kind=kinds[kind],
                to=address,
                content=content_from_dict(content or {}),
                profile_id=profile_id,
            ),
            account_id,
            attempts,
            handed_at is not None,
        )
        for mid, channel, kind, address, content, profile_id, account_id, attempts, handed_at in rows
    ]


def mark_handed(scoped: Session, message_ids: Sequence[str], now: datetime) -> None:
    """Record that these claimed messages are being handed to their provider (committed before
    the provider is called, so a dispatcher that dies during the call leaves the mark)."""
    update_rows(scoped, Message, ("handed_at",), [(mid, now) for mid in message_ids])


@dataclass(frozen=True)
class Closed:
    message_id: str
    decision: Decision
    provider_id: str = ""
    parts: int = 0


def close_messages(scoped: Session, closed: Sequence[Closed], now: datetime) -> None:
    """Record each claimed message's end (or its next try) in one statement."""
    rows = []
    for c in closed:
        match c.decision:
            case Done(status=status, reason=reason):
                rows.append(
                    (
                        c.message_id,
                        status,
                        reason[:300],
                        c.provider_id,
                        c.parts,
                        now if status == SENT else None,
                        now,
                        now,
                        None,
                    )
                )
            case RetryLater(delay_seconds=delay, reason=reason):
                later = now + timedelta(seconds=delay)
                rows.append((c.message_id, QUEUED, reason[:300], "", 0, None, later, now, None))
    update_rows(
        scoped,
        Message,
        ("status", "reason", "provider_id", "parts", "sent_at", "not_before", "updated_at", "handed_at"),
        rows,
    )


def next_due(scoped: Session) -> datetime | None:
    """When the earliest waiting message is due (None when nothing waits)."""
    return scoped.scalar(select(func.min(Message.not_before)).where(Message.status.in_((QUEUED, SENDING))))


def count_by_status(scoped: Session, source: str | None = None) -> dict[str, int]:
    stmt = select(Message.status, func.count()).group_by(Message.status)
    if source is not None:
        stmt = stmt.where(Message.source == source)
    return {status: int(n) for status, n in scoped.execute(stmt)}


def hold_source(scoped: Session, source: str) -> int:
    """Keep the source's queued messages from going out (a paused campaign): how many were held.
    Messages already claimed by a dispatcher finish their attempt."""
    result = scoped.execute(
        update(Message).where(Message.source == source, Message.status == QUEUED).values(status=HELD)
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)


def release_source(scoped: Session, source: str) -> int:
    """Let the source's held messages go again, each at its own time: how many were released."""
    result = scoped.execute(
        update(Message).where(Message.source == source, Message.status == HELD).values(status=QUEUED)
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)


def cancel_source(scoped: Session, source: str, now: datetime) -> int:
    """Skip every message of the source not yet sent (a cancelled campaign): how many."""
    result = scoped.execute(
        update(Message)
        .where(Message.source == source, Message.status.in_((QUEUED, HELD)))
        .values(status=SKIPPED, reason=SkipReason.CANCELLED, updated_at=now)
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)
