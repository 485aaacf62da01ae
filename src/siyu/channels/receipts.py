"""What comes back from providers: delivery reports move messages to delivered or
undelivered; replies that say stop (R, TD, 退订…) and one-click unsubscribes suppress the
address on that channel and withdraw the person's marketing consent at once, so the next send
cycle already skips them. Each callback is recorded once by its dedupe key, however often the
provider retries it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.contracts import ChannelKind
from siyu.channels.ledger import DELIVERED, SENDING, SENT, UNDELIVERED
from siyu.channels.sms import is_stop_reply
from siyu.channels.suppression import suppress_addresses, suppressed
from siyu.channels.tables import Message, MessageReceipt
from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.identity.facade import identities_with_values
from siyu.profiles.consent import Channel, ConsentIn, ConsentStatus, Purpose, record_consents
from siyu.storage.bulk import append_rows, fetch_rows, update_rows

# The identifier kind each channel's addresses are, and the consent channel they answer to.
ADDRESS_KIND = {
    ChannelKind.SMS: "phone",
    ChannelKind.EMAIL: "email",
    ChannelKind.WECHAT_OA: "openid",
    ChannelKind.MINIPROGRAM: "openid",
    ChannelKind.WECOM: "wecom_external_userid",
    ChannelKind.APP_PUSH: "user_id",
}
CONSENT_CHANNEL = {
    ChannelKind.SMS: Channel.SMS,
    ChannelKind.EMAIL: Channel.EMAIL,
    ChannelKind.WECHAT_OA: Channel.WECHAT_OA,
    ChannelKind.MINIPROGRAM: Channel.MINIPROGRAM,
    ChannelKind.WECOM: Channel.WECOM,
    ChannelKind.APP_PUSH: Channel.APP_PUSH,
}


@dataclass(frozen=True)
class DeliveryReport:
    """A provider's word on one message: found by our message id when the provider echoes it,
    else by the provider's id for it (and the address, when one id covers a batch)."""

    dedupe_key: str
    channel: ChannelKind
    delivered: bool
    at: datetime
    message_id: str | None = None
    account_id: str | None = None
    provider_id: str = ""
    address: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inbound:
    """A reply or an unsubscribe from an address."""

    dedupe_key: str
    channel: ChannelKind
    address: str
    at: datetime
    text: str = ""  # a reply's text; empty for an unsubscribe
    kind: str = "reply"  # reply | unsubscribe
    source: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


def _new_keys(scoped: Session, keys: Sequence[str]) -> set[str]:
    seen = {k for (k,) in fetch_rows(scoped, MessageReceipt, ("dedupe_key",), "dedupe_key", set(keys))}
    return set(keys) - seen


def record_deliveries(scoped: Session, reports: Sequence[DeliveryReport]) -> int:
    """Apply the reports not seen before; returns how many matched a message."""
    fresh_keys = _new_keys(scoped, [r.dedupe_key for r in reports])
    fresh = [r for r in {r.dedupe_key: r for r in reports}.values() if r.dedupe_key in fresh_keys]
    if not fresh:
        return 0
    by_id = {r.message_id for r in fresh if r.message_id}
    by_provider = {r.provider_id for r in fresh if not r.message_id and r.provider_id}
    found: dict[tuple[str, ...], tuple[str, str]] = {}
    if by_id:
        for mid, status in fetch_rows(scoped, Message, ("id", "status"), "id", by_id):
            found[(mid,)] = (mid, status)
    if by_provider:
        rows = fetch_rows(
            scoped, Message, ("id", "status", "account_id", "provider_id", "address"), "provider_id", by_provider
        )
        for mid, status, account_id, provider_id, address in rows:
            found[(account_id or "", provider_id, address)] = (mid, status)
            found.setdefault((account_id or "", provider_id, ""), (mid, status))
    now = utcnow()
    receipts, updates = [], []
    for r in fresh:
        key = (r.message_id,) if r.message_id else (r.account_id or "", r.provider_id, r.address)
        match = found.get(key)
        kind = "delivered" if r.delivered else "undelivered"
        receipts.append(
            (
                new_id("rcp_"),
                r.dedupe_key,
                match[0] if match else None,
                r.channel.value,
                kind,
                r.address,
                r.detail,
                r.at,
                now,
            )
        )
        if match and match[1] in (SENDING, SENT, DELIVERED, UNDELIVERED):
            updates.append((match[0], DELIVERED if r.delivered else UNDELIVERED, r.at if r.delivered else None, now))
    _append_receipts(scoped, receipts)
    update_rows(scoped, Message, ("status", "delivered_at", "updated_at"), updates)
    return len(updates)


def record_inbound(scoped: Session, items: Sequence[Inbound]) -> int:
    """Record replies and unsubscribes not seen before. A stop reply or an unsubscribe
    suppresses the address and withdraws marketing consent for it — once: an address already
    suppressed on its channel stays as it is, and an unsubscribe from it (a link clicked again,
    a mailbox provider's retry) is not recorded again. Returns how many stopped."""
    fresh_keys = _new_keys(scoped, [i.dedupe_key for i in items])
    fresh = [i for i in {i.dedupe_key: i for i in items}.values() if i.dedupe_key in fresh_keys]
    already = {
        (channel, address)
        for channel in {i.channel for i in fresh}
        for address in suppressed(scoped, channel.value, {i.address for i in fresh if i.channel is channel})
    }
    fresh = [i for i in fresh if i.kind != "unsubscribe" or (i.channel, i.address) not in already]
    now = utcnow()
    _append_receipts(
        scoped,
        [
            (
                new_id("rcp_"),
                i.dedupe_key,
                None,
                i.channel.value,
                i.kind,
                i.address,
                {"text": i.text, **i.detail},
                i.at,
                now,
            )
            for i in fresh
        ],
    )
    stops = [
        i for i in fresh if (i.kind == "unsubscribe" or is_stop_reply(i.text)) and (i.channel, i.address) not in already
    ]
    if not stops:
        return 0
    suppress_addresses(
        scoped,
        [(i.channel.value, i.address, f"replied {i.text!r}" if i.kind == "reply" else "unsubscribed") for i in stops],
        source=stops[0].source or "receipt",
    )
    _withdraw(scoped, stops)
    return len(stops)


def _withdraw(scoped: Session, stops: Sequence[Inbound]) -> None:
    consents = []
    for channel in {i.channel for i in stops}:
        kind, consent_channel = ADDRESS_KIND.get(channel), CONSENT_CHANNEL.get(channel)
        if kind is None or consent_channel is None:
            continue
        mine = [i for i in stops if i.channel is channel]
        by_address = {i.address: i for i in mine}
        for value, identity_id, _profile in identities_with_values(scoped, kind, by_address):
            stop = by_address[value]
            consents.append(
                ConsentIn(
                    identity_id=identity_id,
                    channel=consent_channel,
                    purpose=Purpose.MARKETING,
                    status=ConsentStatus.WITHDRAWN,
                    at=stop.at,
                    source=stop.source or f"{channel.value}_{stop.kind}",
                    proof={"reply": stop.text} if stop.kind == "reply" else {"unsubscribe": stop.detail},
                )
            )
    record_consents(scoped, consents)


def record_clicks(scoped: Session, clicks: Sequence[tuple[str, str, ChannelKind, str, str, datetime]]) -> int:
    """(dedupe_key, message_id, channel, address, url, at) of clicks on a message's link; returns
    how many were new."""
    fresh_keys = _new_keys(scoped, [c[0] for c in clicks])
    now = utcnow()
    rows = [
        (new_id("rcp_"), key, mid, channel.value, "click", address, {"url": url}, at, now)
        for key, mid, channel, address, url, at in clicks
        if key in fresh_keys
    ]
    _append_receipts(scoped, rows)
    return len(rows)


def _append_receipts(scoped: Session, rows: list[tuple[Any, ...]]) -> None:
    append_rows(
        scoped,
        MessageReceipt,
        ("id", "dedupe_key", "message_id", "channel", "kind", "address", "detail", "at", "recorded_at"),
        rows,
        on_conflict=("workspace_id", "dedupe_key"),
    )


def receipts_of(scoped: Session, message_id: str) -> list[MessageReceipt]:
    return list(
        scoped.scalars(
            select(MessageReceipt).where(MessageReceipt.message_id == message_id).order_by(MessageReceipt.at)
        )
    )
