"""Column presets for marketplace order exports (Taobao/Tmall, JD, Douyin, Youzan) and the
conversion of one row into an order, with every refusal explained.

Headers are matched by aliases after cleaning; cells lose Excel's guards (leading ``'``,
``="…"``, tabs) and money its ``元``/``¥``. Times without a zone are read in the workspace's time
zone."""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from siyu.commerce.contracts import OrderStatus
from siyu.commerce.orders import ItemIn, OrderIn
from siyu.core.errors import ValidationFailedError
from siyu.identity.contracts import IdentifierKind
from siyu.identity.normalise import clean_cell

S = OrderStatus
K = IdentifierKind
_TIME = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?: (\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?$")
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")
CLOSED = "closed"  # cancelled if nothing was paid, refunded otherwise


@dataclass(frozen=True)
class Preset:
    name: str
    platform: str
    buyer_kind: IdentifierKind | None
    columns: dict[str, tuple[str, ...]]
    statuses: dict[str, str]
    description: str = ""
    required: tuple[str, ...] = ("order_no", "status", "total", "ordered_at")
    extras: dict[str, Any] = field(default_factory=dict)
    # One row per SKU: consecutive rows of the same order are one order with several items.
    rows_per_item: bool = False

    @cached_property
    def status_of(self) -> dict[str, str]:
        """``statuses`` in the NFKC form cells are read in (full-width "，" becomes ",")."""
        return {clean_cell(k): v for k, v in self.statuses.items()}


PRESETS: dict[str, Preset] = {
    "taobao": Preset(
        "taobao",
        "tmall",
        K.TAOBAO_NICK,
        {
            "order_no": ("订单编号", "主订单编号"),
            "buyer_id": ("买家会员名",),
            "total": ("总金额", "买家应付货款"),
            "paid": ("买家实际支付金额", "买家实付金额"),
            "status": ("订单状态",),
            "ordered_at": ("订单创建时间", "买家下单时间"),
            "paid_at": ("订单付款时间", "买家付款时间"),
            "receiver_name": ("收货人姓名",),
            "receiver_address": ("收货地址",),
            "receiver_phone": ("联系手机", "联系电话"),
            "store": ("店铺名称",),
        },
        {
            "等待买家付款": S.UNPAID,
            "没有创建支付宝交易": S.UNPAID,
            "买家已付款，等待卖家发货": S.PAID,
            "卖家已发货，等待买家确认": S.SHIPPED,
            "买家已签收": S.SHIPPED,
            "交易成功": S.COMPLETED,
            "交易关闭": CLOSED,
            "交易被淘宝关闭": CLOSED,
        },
        "淘宝/天猫 已卖出的宝贝 → 订单报表 (ExportOrderList)",
    ),
    "jd": Preset(
        "jd",
        "jd",
        K.JD_PIN,
        {
            "order_no": ("订单号",),
            "buyer_id": ("下单帐号", "下单账号"),
            "total": ("订单金额",),
            "paid": ("应付金额", "结算金额"),
            "status": ("订单状态",),
            "ordered_at": ("下单时间",),
            "paid_at": ("付款确认时间",),
            "receiver_name": ("客户姓名",),
            "receiver_address": ("客户地址",),
            "receiver_phone": ("联系电话",),
            "sku": ("商品ID", "商品编号"),
            "quantity": ("订购数量", "商品数量"),
            "unit_price": ("京东价", "商品单价"),
        },
        {
            "等待付款": S.UNPAID,
            "等待出库": S.PAID,
            "等待确认收货": S.SHIPPED,
            "完成": S.COMPLETED,
            "已完成": S.COMPLETED,
            "已取消": CLOSED,
            "锁定": S.PAID,
        },
        "京东商家后台 订单导出 (一行一个 SKU)",
        rows_per_item=True,
    ),
    "douyin": Preset(
        "douyin",
        "douyin",
        None,
        {
            "order_no": ("主订单编号",),
            "total": ("订单应付金额",),
            "status": ("订单状态",),
            "ordered_at": ("订单提交时间",),
            "receiver_name": ("收件人",),
            "receiver_phone": ("收件人手机号",),
            "receiver_address": ("详细地址",),
            "sku": ("商品ID",),
            "quantity": ("商品数量",),
            "unit_price": ("商品单价",),
        },
        {"待支付": S.UNPAID, "待发货": S.PAID, "已发货": S.SHIPPED, "已完成": S.COMPLETED, "已关闭": CLOSED},
        "抖店 订单导出 (UTF-8 BOM, 收件人加密; 一行一个子订单)",
        rows_per_item=True,
    ),
    "youzan": Preset(
        "youzan",
        "youzan",
        K.YOUZAN_BUYER_ID,
        {
            "order_no": ("订单号",),
            "buyer_id": ("买家昵称",),
            "buyer_phone": ("买家手机号",),
            "total": ("订单实付金额", "订单实收金额"),
            "status": ("订单状态",),
            "ordered_at": ("订单创建时间",),
            "completed_at": ("交易成功时间",),
        },
        {"待付款": S.UNPAID, "待发货": S.PAID, "已发货": S.SHIPPED, "交易成功": S.COMPLETED, "交易关闭": CLOSED},
        "有赞 订单导出",
        required=("order_no", "total", "ordered_at"),
    ),
}


def custom_preset(platform: str, buyer_kind: str | None, columns: dict[str, str]) -> Preset:
    """The mapping step for any other file: our field → the file's column."""
    known = {
        "order_no",
        "buyer_id",
        "total",
        "paid",
        "status",
        "ordered_at",
        "paid_at",
        "receiver_name",
        "receiver_phone",
        "receiver_address",
        "store",
        "sku",
        "quantity",
        "unit_price",
    }
    unknown = set(columns) - known
    if unknown:
        raise ValidationFailedError(f"unknown fields in the mapping: {', '.join(sorted(unknown))}")
    return Preset(
        "custom",
        platform,
        IdentifierKind(buyer_kind) if buyer_kind else None,
        {k: (v,) for k, v in columns.items()},
        {s.value: s for s in OrderStatus},
    )


@dataclass(frozen=True)
class Converted:
    order: OrderIn
    buyer_kind: IdentifierKind | None
    buyer_id: str | None
    item: ItemIn | None = None  # the row's line item, when the export has item columns


class RowError(ValueError):
    pass


def _cell(row: dict[str, Any], preset: Preset, name: str) -> str:
    for alias in preset.columns.get(name, ()):
        if alias in row and row[alias] not in (None, ""):
            return clean_cell(row[alias])
    return ""


def money_to_fen(value: str, field_name: str) -> int:
    cleaned = re.sub(r"[元¥￥,\s]", "", value)
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise RowError(f"{field_name} {value!r} is not an amount") from None
    if amount < 0:
        raise RowError(f"{field_name} is negative")
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_time(value: Any, tz: ZoneInfo, field_name: str) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=tz) if value.tzinfo is None else value
    text = clean_cell(value)
    quick = _TIME.match(text)  # the usual shapes, read without strptime's cost
    if quick:
        with suppress(ValueError):  # e.g. month 13: the formats below say no too
            year, month, day, hour, minute, second = (int(part) for part in quick.groups(default="0"))
            return datetime(year, month, day, hour, minute, second, tzinfo=tz)
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"{field_name} {text!r} is not a date-time") from None
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed


def convert(row: dict[str, Any], preset: Preset, tz: ZoneInfo) -> Converted:
    if "__error__" in row:
        raise RowError(str(row["__error__"]))
    missing = [name for name in preset.required if not _cell(row, preset, name)]
    if missing:
        raise RowError("missing " + ", ".join(missing))
    raw_status = _cell(row, preset, "status").removeprefix("(删除)")
    if "status" in preset.required or raw_status:
        # Compare in the same NFKC form cells are read in (full-width "，" becomes ",").
        statuses = preset.status_of
        if raw_status not in statuses:
            raise RowError(f"unknown order status {raw_status!r}")
        status = statuses[raw_status]
    else:
        status = S.COMPLETED if _cell(row, preset, "completed_at") else S.PAID
    total = money_to_fen(_cell(row, preset, "total"), "total")
    paid_text = _cell(row, preset, "paid")
    paid = money_to_fen(paid_text, "paid") if paid_text else (0 if status in (S.UNPAID, CLOSED) else total)
    if status == CLOSED:
        status = S.REFUNDED if paid else S.CANCELLED
    paid = 0 if status in (S.UNPAID, S.CANCELLED) else min(paid, total)
    ordered_at = parse_time(_cell(row, preset, "ordered_at"), tz, "ordered_at")
    status_at_text = _cell(row, preset, "completed_at" if status == S.COMPLETED else "paid_at")
    status_at = parse_time(status_at_text, tz, "status time") if status_at_text else None
    buyer_kind, buyer_id = preset.buyer_kind, _cell(row, preset, "buyer_id") or None
    phone = _cell(row, preset, "buyer_phone")
    if phone and "*" not in phone:
        buyer_kind, buyer_id = K.PHONE, phone
    if buyer_id is None:
        if preset.buyer_kind is not None:  # the export names buyers; a row without one is broken
            raise RowError("missing buyer_id")
        buyer_kind = None
    order = OrderIn(
        platform=preset.platform,
        order_no=_cell(row, preset, "order_no"),
        status=OrderStatus(status),
        total_fen=total,
        paid_fen=paid,
        ordered_at=ordered_at,
        buyer_kind=buyer_kind.value if buyer_kind else "",
        buyer_id=buyer_id or "",
        buyer_identity_id=None,
        store=_cell(row, preset, "store"),
        status_at=status_at,
        receiver_name=_cell(row, preset, "receiver_name") or None,
        receiver_phone=_cell(row, preset, "receiver_phone") or None,
        receiver_address=_cell(row, preset, "receiver_address") or None,
    )
    return Converted(order, buyer_kind, buyer_id, _item(row, preset))


def _item(row: dict[str, Any], preset: Preset) -> ItemIn | None:
    sku = _cell(row, preset, "sku")
    if not sku:
        return None
    quantity_text = _cell(row, preset, "quantity") or "1"
    try:
        quantity = int(Decimal(quantity_text))
    except InvalidOperation:
        raise RowError(f"quantity {quantity_text!r} is not a number") from None
    if quantity <= 0 or Decimal(quantity_text) != quantity:
        raise RowError(f"quantity {quantity_text!r} is not a positive whole number")
    price_text = _cell(row, preset, "unit_price")
    unit = money_to_fen(price_text, "unit_price") if price_text else 0
    if len(sku) > 64:
        raise RowError("sku is longer than 64 characters")
    return ItemIn(sku=sku, quantity=quantity, unit_price_fen=unit, amount_fen=unit * quantity)
