"""Commerce facade: reads for reports, bulk writes for loaders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from siyu.commerce.contracts import DailyOrders, OrderStatus
from siyu.commerce.orders import ItemIn, StatusChange, status_timeline
from siyu.commerce.products import ProductPublic
from siyu.commerce.products import to_public as product_public
from siyu.commerce.tables import Order, OrderItem, Product
from siyu.core.errors import NotFoundError
from siyu.core.pagination import Page
from siyu.identity.tables import Identity
from siyu.storage.daybucket import local_day, parse_day
from siyu.storage.keyed import keyed_rows, stored_datetime
from siyu.storage.paging import newest_first
from siyu.storage.scoping import require_workspace


def count_orders(scoped: Session) -> int:
    return int(scoped.scalar(select(func.count()).select_from(Order)) or 0)


def daily_orders(scoped: Session, *, since: datetime, timezone: str) -> list[DailyOrders]:
    """Orders placed and amount paid per local day since ``since``."""
    day = local_day(scoped, Order.ordered_at, timezone).label("day")
    rows = scoped.execute(
        select(day, func.count(), func.coalesce(func.sum(Order.paid_fen), 0))
        .where(Order.ordered_at >= since)
        .group_by(day)
        .order_by(day)
    ).all()
    return [DailyOrders(parse_day(d), int(n), int(fen)) for d, n, fen in rows]


def _bulk(scoped: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    workspace_id = require_workspace(scoped)
    if rows:
        scoped.execute(insert(model), [{**r, "workspace_id": workspace_id} for r in rows])


def insert_product_rows(scoped: Session, rows: Sequence[dict[str, Any]]) -> None:
    _bulk(scoped, Product, rows)


def insert_order_rows(scoped: Session, rows: Sequence[dict[str, Any]]) -> None:
    _bulk(scoped, Order, rows)


def insert_order_item_rows(scoped: Session, rows: Sequence[dict[str, Any]]) -> None:
    _bulk(scoped, OrderItem, rows)


@dataclass(frozen=True)
class OrderPublic:
    id: str
    platform: str
    store: str
    order_no: str
    status: str
    total_fen: int
    paid_fen: int
    receiver_name_masked: str | None
    receiver_phone_masked: str | None
    ordered_at: datetime
    paid_at: datetime | None


def orders_of_identities(scoped: Session, identity_ids: Sequence[str], limit: int = 100) -> list[OrderPublic]:
    """A person's latest orders: those placed by any of their buyer identifiers."""
    if not identity_ids:
        return []
    rows = scoped.scalars(
        select(Order)
        .where(Order.buyer_identity_id.in_(list(identity_ids)))
        .order_by(Order.ordered_at.desc())
        .limit(limit)
    )
    return [order_to_public(o) for o in rows]


@dataclass(frozen=True)
class OrderDetailPublic:
    order: OrderPublic
    buyer_kind: str
    buyer_id: str
    buyer_profile_id: str | None
    items: list[ItemIn]
    timeline: list[StatusChange]


def order_to_public(o: Order) -> OrderPublic:
    return OrderPublic(
        o.id,
        o.platform,
        o.store,
        o.order_no,
        o.status,
        o.total_fen,
        o.paid_fen,
        o.receiver_name_masked,
        o.receiver_phone_masked,
        o.ordered_at,
        o.paid_at,
    )


def list_orders(
    scoped: Session,
    *,
    platform: str | None = None,
    status: OrderStatus | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[OrderPublic]:
    stmt = select(Order)
    if platform:
        stmt = stmt.where(Order.platform == platform)
    if status:
        stmt = stmt.where(Order.status == status.value)
    return newest_first(scoped, stmt, Order.id, cursor=cursor, limit=limit, convert=order_to_public)


def get_order(scoped: Session, order_id: str) -> OrderDetailPublic:
    order = scoped.scalar(select(Order).where(Order.id == order_id))
    if order is None:
        raise NotFoundError("order not found")
    items = [
        ItemIn(i.sku, i.quantity, i.unit_price_fen, i.amount_fen)
        for i in scoped.scalars(select(OrderItem).where(OrderItem.order_id == order.id))
    ]
    profile_id = (
        scoped.scalar(select(Identity.profile_id).where(Identity.id == order.buyer_identity_id))
        if order.buyer_identity_id
        else None
    )
    return OrderDetailPublic(
        order_to_public(order), order.buyer_kind, order.buyer_id, profile_id, items, status_timeline(scoped, order.id)
    )


def list_products(scoped: Session, *, cursor: str | None = None, limit: int = 50) -> Page[ProductPublic]:
    return newest_first(scoped, select(Product), Product.id, cursor=cursor, limit=limit, convert=product_public)


_PAID = """
SELECT o.buyer_identity_id, o.id, o.paid_at, o.paid_fen
FROM keys CROSS JOIN orders AS o {indexed_by:ix_orders_buyer_identity_id} ON o.buyer_identity_id = keys.key
WHERE {workspace:o} AND o.paid_at IS NOT NULL AND o.paid_at >= :since AND o.refunded_at IS NULL
  AND o.cancelled_at IS NULL
"""


def paid_orders(
    scoped: Session, buyer_identity_ids: Sequence[str], since: datetime
) -> list[tuple[str, str, datetime, int]]:
    """(buyer identity, order id, paid at, paid fen) of the orders these identities paid since
    ``since`` and neither refunded nor cancelled."""
    rows = keyed_rows(scoped, _PAID, list(buyer_identity_ids), {"since": since})
    return [(i, o, stored_datetime(at), int(fen)) for i, o, at, fen in rows]
