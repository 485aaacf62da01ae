"""The sandbox provider's other half: some time after a message was "sent", its receipt
arrives — delivered for most, undelivered for a few — and some people reply R or click, each
decided by a stable hash of the message id so a replay gives the same story. Everything goes
through the same receipt path real providers' callbacks take."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.contracts import ChannelKind
from siyu.channels.ledger import SENT
from siyu.channels.receipts import DeliveryReport, Inbound, record_clicks, record_deliveries, record_inbound
from siyu.channels.tables import ChannelAccount, Message

DEFAULTS = {"delivery_rate": 0.97, "reply_stop_rate": 0.002, "click_rate": 0.05, "delay_seconds": 5.0}
BATCH = 20_000


@dataclass
class SandboxReport:
    delivered: int = 0
    undelivered: int = 0
    stopped: int = 0
    clicked: int = 0
    waiting: bool = False  # sent messages remain whose receipts are not due yet


def chance(message_id: str, what: str) -> float:
    """A stable number in [0, 1) for this message and what may happen to it."""
    digest = hashlib.blake2b(f"{what}:{message_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _rates(settings: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, default in DEFAULTS.items():
        try:
            out[key] = float(settings.get(key, default))
        except (TypeError, ValueError):
            out[key] = default
    return out


def simulate_receipts(scoped: Session, now: datetime) -> SandboxReport:
    report = SandboxReport()
    accounts = scoped.scalars(select(ChannelAccount).where(ChannelAccount.provider == "sandbox"))
    for account in accounts:
        rates = _rates(dict(account.settings or {}))
        delay = timedelta(seconds=rates["delay_seconds"])
        rows = scoped.execute(
            select(Message.id, Message.channel, Message.address, Message.sent_at, Message.content)
            .where(Message.status == SENT, Message.account_id == account.id)
            .order_by(Message.sent_at)
            .limit(BATCH)
        ).all()
        deliveries, replies, clicks = [], [], []
        for mid, channel, address, sent_at, content in rows:
            at = (sent_at or now) + delay
            if at > now:
                report.waiting = True
                continue
            kind = ChannelKind(channel)
            delivered = chance(mid, "deliver") < rates["delivery_rate"]
            deliveries.append(
                DeliveryReport(f"sbx:{mid}:receipt", kind, delivered, at, message_id=mid, detail={"sandbox": True})
            )
            if not delivered:
                continue
            if kind is ChannelKind.SMS and chance(mid, "reply") < rates["reply_stop_rate"]:
                replies.append(Inbound(f"sbx:{mid}:reply", kind, address, at, text="R", source="sandbox"))
            if (content or {}).get("link") and chance(mid, "click") < rates["click_rate"]:
                clicks.append((f"sbx:{mid}:click", mid, kind, address, str(content["link"]), at))
        record_deliveries(scoped, deliveries)
        report.delivered += sum(1 for d in deliveries if d.delivered)
        report.undelivered += sum(1 for d in deliveries if not d.delivered)
        report.stopped += record_inbound(scoped, replies)
        report.clicked += record_clicks(scoped, clicks)
        if len(rows) == BATCH:
            report.waiting = True
    return report
