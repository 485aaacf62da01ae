"""Commerce tables. Money is integer fen; receivers are stored only in masked form."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, Timestamped, WorkspaceScoped


class Product(WorkspaceScoped, Timestamped, Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("workspace_id", "sku"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("prd_"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100))
    brand: Mapped[str] = mapped_column(String(100))
    price_fen: Mapped[int] = mapped_column(BigInteger)


class Order(WorkspaceScoped, Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("workspace_id", "platform", "order_no"),
        Index("ix_orders_workspace_id_ordered_at", "workspace_id", "ordered_at"),
        Index("ix_orders_workspace_id_changed_at", "workspace_id", "changed_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("ord_"))
    platform: Mapped[str] = mapped_column(String(20))
    store: Mapped[str] = mapped_column(String(100), default="")
    order_no: Mapped[str] = mapped_column(String(64))
    # The buyer's identifier on this platform; its profile is the order's person.
    buyer_identity_id: Mapped[str | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL"), index=True, default=None
    )
    buyer_kind: Mapped[str] = mapped_column(String(40))
    buyer_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    total_fen: Mapped[int] = mapped_column(BigInteger)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    receiver_name_masked: Mapped[str | None] = mapped_column(String(100), default=None)
    receiver_phone_masked: Mapped[str | None] = mapped_column(String(32), default=None)
    receiver_address_masked: Mapped[str | None] = mapped_column(String(400), default=None)
    ordered_at: Mapped[datetime] = mapped_column()
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    shipped_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    refunded_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the row was last written, set by the database: its default on insert, a trigger on
    # update (see migration 0016). What the batch engine's incremental transfer reads by.
    changed_at: Mapped[datetime] = mapped_column(server_default=text("CURRENT_TIMESTAMP"))


class OrderItem(WorkspaceScoped, Base):
    __tablename__ = "order_items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("itm_"))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_fen: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)


class OrderStatusChange(WorkspaceScoped, Base):
    """The order's status timeline: one row per change, as the source reported it."""

    __tablename__ = "order_status_changes"
    __table_args__ = (Index("ix_order_status_changes_order_id_at", "order_id", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("osc_"))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16), default=None)
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
