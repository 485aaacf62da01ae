"""Orders and products: upsert in batches (order sync from marketplaces, the mini-program, POS),
browse, and one order with its items and status timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from siyu.api.deps import Analyst, Operator, ScopedSessionDep
from siyu.api.errors import COMMON_ERRORS
from siyu.api.schemas import OrderOut, PagePublic
from siyu.commerce.contracts import OrderStatus
from siyu.commerce.facade import get_order, list_orders, list_products
from siyu.commerce.orders import ItemIn, OrderIn
from siyu.commerce.products import ProductIn, upsert_products
from siyu.core.clock import utcnow
from siyu.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from siyu.identity.contracts import IdentifierKind
from siyu.ingest.orders import OrderSync, sync_orders

router = APIRouter(prefix="/api/v1", tags=["commerce"], responses=COMMON_ERRORS)
Fen = Annotated[int, Field(ge=0, le=10**12, description="amount in fen (分)")]


class ItemUpsert(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=100_000)
    unit_price_fen: Fen
    amount_fen: Fen


class BuyerIn(BaseModel):
    kind: IdentifierKind = Field(description="taobao_nick, jd_pin, douyin_buyer_id, openid, member_no, phone…")
    id: str = Field(min_length=1, max_length=200)


class OrderUpsert(BaseModel):
    platform: str = Field(min_length=1, max_length=20, pattern=r"^[a-z0-9_]+$")
    order_no: str = Field(min_length=1, max_length=64)
    store: str = Field(default="", max_length=100)
    status: OrderStatus
    total_fen: Fen
    paid_fen: Fen = 0
    ordered_at: AwareDatetime
    status_at: AwareDatetime | None = Field(default=None, description="when the order reached this status")
    buyer: BuyerIn
    receiver_name: str | None = Field(default=None, max_length=100, description="stored masked")
    receiver_phone: str | None = Field(default=None, max_length=32, description="stored masked")
    receiver_address: str | None = Field(default=None, max_length=400, description="stored masked")
    items: list[ItemUpsert] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _amounts_add_up(self) -> OrderUpsert:
        if self.paid_fen > self.total_fen:
            raise ValueError("paid_fen cannot exceed total_fen")
        if self.items and sum(i.amount_fen for i in self.items) < self.paid_fen:
            raise ValueError("item amounts add up to less than paid_fen")
        return self


class OrdersUpsert(BaseModel):
    orders: list[OrderUpsert] = Field(min_length=1, max_length=500)


class OrderResult(BaseModel):
    platform: str
    order_no: str
    result: str
    reason: str | None
    order_id: str | None


class OrdersResult(BaseModel):
    results: list[OrderResult]


class TimelineStep(BaseModel):
    from_status: str | None
    to_status: str
    at: datetime


class OrderDetail(BaseModel):
    order: OrderOut
    buyer_kind: str
    buyer_id: str
    buyer_profile_id: str | None
    items: list[ItemUpsert]
    timeline: list[TimelineStep]


class ProductUpsert(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(default="", max_length=100)
    brand: str = Field(default="", max_length=100)
    price_fen: Fen


class ProductsUpsert(BaseModel):
    products: list[ProductUpsert] = Field(min_length=1, max_length=1000)


class ProductRow(BaseModel):
    id: str
    sku: str
    name: str
    category: str
    brand: str
    price_fen: int


@router.put("/orders", response_model=OrdersResult)
def upsert_orders_route(body: OrdersUpsert, principal: Operator, session: ScopedSessionDep) -> OrdersResult:
    """Create or update orders by (platform, order_no). Each order's result says created, updated,
    unchanged or rejected (with the reason, e.g. a status that would go backwards). Status changes
    become events ("Order Paid" …) on the buyer's profile."""
    syncs = [
        OrderSync(
            order=OrderIn(
                platform=o.platform,
                order_no=o.order_no,
                status=o.status,
                total_fen=o.total_fen,
                paid_fen=o.paid_fen,
                ordered_at=o.ordered_at,
                buyer_kind=o.buyer.kind.value,
                buyer_id=o.buyer.id,
                buyer_identity_id=None,
                store=o.store,
                status_at=o.status_at,
                receiver_name=o.receiver_name,
                receiver_phone=o.receiver_phone,
                receiver_address=o.receiver_address,
                items=[ItemIn(i.sku, i.quantity, i.unit_price_fen, i.amount_fen) for i in o.items],
            ),
            buyer_kind=o.buyer.kind,
            buyer_id=o.buyer.id,
        )
        for o in body.orders
    ]
    outcomes = sync_orders(session, syncs, utcnow())
    return OrdersResult(
        results=[
            OrderResult(platform=r.platform, order_no=r.order_no, result=r.result, reason=r.reason, order_id=r.order_id)
            for r in outcomes
        ]
    )


@router.get("/orders", response_model=PagePublic[OrderOut])
def browse_orders(
    principal: Analyst,
    session: ScopedSessionDep,
    platform: Annotated[str | None, Query(max_length=20)] = None,
    status: OrderStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> PagePublic[OrderOut]:
    """Newest first; receivers are masked."""
    page = list_orders(session, platform=platform, status=status, cursor=cursor, limit=limit)
    return PagePublic(items=[OrderOut(**o.__dict__) for o in page.items], next_cursor=page.next_cursor)


@router.get("/orders/{order_id}", response_model=OrderDetail)
def order_detail(order_id: str, principal: Analyst, session: ScopedSessionDep) -> OrderDetail:
    detail = get_order(session, order_id)
    return OrderDetail(
        order=OrderOut(**detail.order.__dict__),
        buyer_kind=detail.buyer_kind,
        buyer_id=detail.buyer_id,
        buyer_profile_id=detail.buyer_profile_id,
        items=[ItemUpsert(**i.__dict__) for i in detail.items],
        timeline=[TimelineStep(**t.__dict__) for t in detail.timeline],
    )


@router.put("/products", response_model=dict[str, str])
def upsert_products_route(body: ProductsUpsert, principal: Operator, session: ScopedSessionDep) -> dict[str, str]:
    """Create or update products by SKU; answers {sku: created | updated | unchanged}."""
    return upsert_products(session, [ProductIn(p.sku, p.name, p.category, p.brand, p.price_fen) for p in body.products])


@router.get("/products", response_model=PagePublic[ProductRow])
def browse_products(
    principal: Analyst,
    session: ScopedSessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> PagePublic[ProductRow]:
    page = list_products(session, cursor=cursor, limit=limit)
    return PagePublic(items=[ProductRow(**p.__dict__) for p in page.items], next_cursor=page.next_cursor)
