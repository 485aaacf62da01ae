"""Handing messages to the ledger: written once by key, with a dispatch asked for in the same
transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from siyu.channels.ledger import MessageBatch, MessageIn, write_batch, write_messages
from siyu.channels.scheduling import schedule_dispatch
from siyu.core.clock import utcnow


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


def send_batch(scoped: Session, batch: MessageBatch) -> SendReport:
    """``send_messages`` for the messages of one send, given column by column."""
    now = utcnow()
    written = write_batch(scoped, batch, now)
    if not all(batch.skipped):
        schedule_dispatch(scoped, max(batch.not_before, now))
    return SendReport(written=written, repeated=len(batch.keys) - written)
