"""Order sync: resolve each buyer to a person, upsert the orders, and emit each status change as
an event ("Order Paid" …) so automations can trigger on it. Idempotent: a re-sent order changes
nothing and emits nothing twice (event messageIds are derived from the order and status)."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from siyu.commerce.orders import OrderIn, OrderOutcome, upsert_orders
from siyu.identity.contracts import Identifier, IdentifierKind
from siyu.identity.errors import InvalidIdentifierError
from siyu.identity.normalise import normalise
from siyu.identity.resolver import observe_many
from siyu.ingest.contracts import EventType, IncomingEvent
from siyu.ingest.events import store_events
from siyu.profiles.facade import apply_identity_outcome

EVENT_OF_STATUS = {
    "unpaid": "Order Created",
    "paid": "Order Paid",
    "shipped": "Order Shipped",
    "completed": "Order Completed",
    "refunded": "Order Refunded",
    "cancelled": "Order Cancelled",
}
_MARKETPLACES = {"tmall", "taobao", "jd", "douyin", "youzan"}


@dataclass(frozen=True)
class OrderSync:
    order: OrderIn  # buyer_identity_id is filled in here
    buyer_kind: IdentifierKind | None  # none: the export names no buyer (Douyin)
    buyer_id: str | None


def _buyer(sync: OrderSync) -> list[Identifier]:
    found = (
        [normalise(sync.buyer_kind, sync.buyer_id, sync.order.platform)] if sync.buyer_kind and sync.buyer_id else []
    )
    phone = sync.order.receiver_phone
    # Only the masked receiver phone is kept, as a weak hint: a full receiver phone may be a gift
    # recipient's and must not merge the buyer with them.
    if phone and "*" in phone and sync.order.platform in _MARKETPLACES:
        with suppress(InvalidIdentifierError):
            found.append(normalise(IdentifierKind.PHONE, phone, sync.order.platform))
    return found


def sync_orders(scoped: Session, syncs: list[OrderSync], received_at: datetime) -> list[OrderOutcome]:
    outcomes: dict[int, OrderOutcome] = {}
    valid: list[tuple[int, OrderSync, list[Identifier]]] = []
    for n, sync in enumerate(syncs):
        try:
            valid.append((n, sync, _buyer(sync)))
        except InvalidIdentifierError as exc:
            outcomes[n] = OrderOutcome(sync.order.platform, sync.order.order_no, "rejected", f"buyer: {exc.message}")
    resolved = observe_many(
        scoped, [ids for _n, _s, ids in valid], subjects=[ids[0] if ids else None for _n, _s, ids in valid]
    )
    apply_identity_outcome(scoped, resolved.new_profile_ids, resolved.changes)
    orders = [
        replace(s.order, buyer_identity_id=resolved.primary_identity_ids[k]) for k, (_n, s, _i) in enumerate(valid)
    ]
    for (n, _s, _i), outcome in zip(valid, upsert_orders(scoped, orders), strict=True):
        outcomes[n] = outcome
    events = []
    for (n, _sync, ids), order in zip(valid, orders, strict=True):
        for change in outcomes[n].changes:
            events.append(
                IncomingEvent(
                    type=EventType.TRACK,
                    message_id=f"order:{order.platform}:{order.order_no}:{change.to_status}",
                    timestamp=change.at,
                    event=EVENT_OF_STATUS[change.to_status],
                    properties={
                        "order_no": order.order_no,
                        "platform": order.platform,
                        "store": order.store,
                        "status": change.to_status,
                        "from_status": change.from_status,
                        "total_fen": order.total_fen,
                        "paid_fen": order.paid_fen,
                    },
                    context={
                        "source": "order_sync",
                        "identifiers": [{"kind": i.kind.value, "scope": i.scope, "value": i.value} for i in ids[:1]],
                    },
                )
            )
    store_events(scoped, events, received_at)
    return [outcomes[n] for n in range(len(syncs))]
