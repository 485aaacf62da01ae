"""Types that cross the commerce boundary."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date


class OrderStatus(enum.StrEnum):
    UNPAID = "unpaid"
    PAID = "paid"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


class Platform(enum.StrEnum):
    TMALL = "tmall"
    JD = "jd"
    DOUYIN = "douyin"
    MINIPROGRAM = "miniprogram"
    OFFLINE = "offline"
    YOUZAN = "youzan"


@dataclass(frozen=True)
class DailyOrders:
    day: date
    orders: int
    paid_fen: int
