"""Order upserts with a status state machine and timeline.

An order is identified by (platform, order_no). Status moves forward (unpaid → paid → shipped →
completed) or ends (cancelled before shipping, refunded after paying); a report that would move
it backwards (an older sync arriving late) is rejected with the reason and changes nothing.
Receivers are stored masked only. Amounts are integer fen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.commerce.contracts import OrderStatus
from siyu.commerce.tables import Order, OrderItem, OrderStatusChange
from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.profiles.masking import mask_address, mask_name, mask_phone

S = OrderStatus
_FORWARD = {S.UNPAID: 0, S.PAID: 1, S.SHIPPED: 2, S.COMPLETED: 3}
_TIME_FIELD = {
    S.PAID: "paid_at",
    S.SHIPPED: "shipped_at",
    S.COMPLETED: "completed_at",
    S.REFUNDED: "refunded_at",
    S.CANCELLED: "cancelled_at",
}


@dataclass(frozen=True)
class ItemIn:
    sku: str
    quantity: int
    unit_price_fen: int
    amount_fen: int


@dataclass(frozen=True)
class OrderIn:
    platform: str
    order_no: str
    status: OrderStatus
    total_fen: int
    paid_fen: int
    ordered_at: datetime
    buyer_kind: str
    buyer_id: str
    buyer_identity_id: str | None
    store: str = ""
    status_at: datetime | None = None  # when the current status was reached
    receiver_name: str | None = None
    receiver_phone: str | None = None
    receiver_address: str | None = None
    items: list[ItemIn] = field(default_factory=list)


@dataclass(frozen=True)
class StatusChange:
    from_status: str | None
    to_status: str
    at: datetime


@dataclass(frozen=True)
class OrderOutcome:
    platform: str
    order_no: str
    result: str  # created | updated | unchanged | rejected
    reason: str | None = None
    order_id: str | None = None
    changes: list[StatusChange] = field(default_factory=list)


def transition_problem(current: OrderStatus | None, reported: OrderStatus) -> str | None:
    """Why ``current`` → ``reported`` cannot happen, or None if it can."""
    if current is None or current is reported:
        return None
    if current in (S.CANCELLED, S.REFUNDED):
        return f"order is {current.value}; it cannot become {reported.value}"
    if reported is S.CANCELLED:
        return None if current in (S.UNPAID, S.PAID) else f"a {current.value} order cannot be cancelled; refund it"
    if reported is S.REFUNDED:
        return None if current is not S.UNPAID else "an unpaid order cannot be refunded"
    if _FORWARD[reported] < _FORWARD[current]:
        return f"status {current.value} → {reported.value} is a step back (an older report?)"
    return None


def _masked(o: OrderIn) -> dict[str, Any]:
    return {
        "receiver_name_masked": mask_name(o.receiver_name)
        if o.receiver_name and "*" not in o.receiver_name
        else o.receiver_name,
        "receiver_phone_masked": mask_phone(o.receiver_phone)
        if o.receiver_phone and "*" not in o.receiver_phone
        else o.receiver_phone,
        "receiver_address_masked": mask_address(o.receiver_address)
        if o.receiver_address and "*" not in o.receiver_address
        else o.receiver_address,
    }


def upsert_orders(scoped: Session, orders: list[OrderIn]) -> list[OrderOutcome]:
    numbers_by_platform: dict[str, set[str]] = {}
    for o in orders:
        numbers_by_platform.setdefault(o.platform, set()).add(o.order_no)
    existing = {
        (r.platform, r.order_no): r
        for platform, numbers in numbers_by_platform.items()
        # By platform and number: the whole unique index, not a scan of the workspace's orders.
        for r in scoped.scalars(select(Order).where(Order.platform == platform, Order.order_no.in_(numbers)))
    }
    outcomes = []
    for o in orders:
        row = existing.get((o.platform, o.order_no))
        current = OrderStatus(row.status) if row else None
        problem = transition_problem(current, o.status)
        if problem:
            outcomes.append(OrderOutcome(o.platform, o.order_no, "rejected", problem, row.id if row else None))
            continue
        at = o.status_at or (o.ordered_at if o.status is S.UNPAID else utcnow())
        fields: dict[str, Any] = {
            "store": o.store,
            "buyer_kind": o.buyer_kind,
            "buyer_id": o.buyer_id,
            "buyer_identity_id": o.buyer_identity_id,
            "status": o.status.value,
            "total_fen": o.total_fen,
            "paid_fen": o.paid_fen,
            "ordered_at": o.ordered_at,
            **_masked(o),
        }
        if o.status in _TIME_FIELD:
            fields[_TIME_FIELD[o.status]] = at
        created = row is None
        if row is None:
            # The id is set here, so the new rows are inserted together at the next flush.
            row = Order(id=new_id("ord_"), platform=o.platform, order_no=o.order_no, **fields)
            scoped.add(row)
            existing[(o.platform, o.order_no)] = row
            result = "created"
        else:
            before = {k: getattr(row, k) for k in fields}
            if o.status is current:
                fields.pop(_TIME_FIELD.get(o.status, ""), None)  # keep when it first got there
            for k, v in fields.items():
                setattr(row, k, v)
            result = "updated" if any(getattr(row, k) != before[k] for k in fields) else "unchanged"
        if o.items and _replace_items(scoped, row, o.items, created) and result == "unchanged":
            result = "updated"
        changes = []
        if current is not o.status:
            change = StatusChange(current.value if current else None, o.status.value, at)
            scoped.add(
                OrderStatusChange(order_id=row.id, from_status=change.from_status, to_status=change.to_status, at=at)
            )
            changes.append(change)
        outcomes.append(OrderOutcome(o.platform, o.order_no, result, None, row.id, changes))
    return outcomes


def _replace_items(scoped: Session, order: Order, items: list[ItemIn], created: bool) -> bool:
    """Make the order's items these; returns whether they changed (the same items again are left
    as they are)."""
    current = [] if created else list(scoped.scalars(select(OrderItem).where(OrderItem.order_id == order.id)))

    def key(i: ItemIn | OrderItem) -> tuple[str, int, int, int]:
        return (i.sku, i.quantity, i.unit_price_fen, i.amount_fen)

    if sorted(map(key, current)) == sorted(map(key, items)):
        return False
    for old in current:
        scoped.delete(old)
    if not created:
        # The items move to the batch engine with their order: mark the order changed, even
        # when nothing else of it did.
        order.changed_at = utcnow()
    for item in items:
        scoped.add(
            OrderItem(
                order_id=order.id,
                sku=item.sku,
                quantity=item.quantity,
                unit_price_fen=item.unit_price_fen,
                amount_fen=item.amount_fen,
            )
        )
    return True


def status_timeline(scoped: Session, order_id: str) -> list[StatusChange]:
    rows = scoped.scalars(
        select(OrderStatusChange).where(OrderStatusChange.order_id == order_id).order_by(OrderStatusChange.at)
    )
    return [StatusChange(r.from_status, r.to_status, r.at) for r in rows]
