"""Handing messages to the ledger: written once by key, with a dispatch asked for in the same
transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from siyu.channels.ledger import MessageIn, write_messages
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
