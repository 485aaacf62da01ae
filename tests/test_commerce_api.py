"""Orders and products through the API: upserts, the status state machine, the timeline, status
events on the buyer's profile, masking, idempotency."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from siyu.storage.session import Database
from tests.conftest import make_actor


def order(status: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "platform": "tmall",
        "order_no": "3000000000001",
        "store": "溪谷天猫旗舰店",
        "status": status,
        "total_fen": 25800,
        "paid_fen": 0 if status in ("unpaid", "cancelled") else 25800,
        "ordered_at": "2026-11-20T10:00:00+08:00",
        "buyer": {"kind": "taobao_nick", "id": "甜蜜小兔88"},
        "receiver_name": "李娜",
        "receiver_phone": "138****5678",
        "receiver_address": "浙江省杭州市西湖区文三路100号",
        "items": [{"sku": "SKU010000", "quantity": 2, "unit_price_fen": 12900, "amount_fen": 25800}],
    }
    body.update(over)
    return body


def put(client: TestClient, headers: dict[str, str], *orders: dict[str, Any]) -> list[dict[str, Any]]:
    r = client.put("/api/v1/orders", json={"orders": list(orders)}, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


def test_order_lifecycle_timeline_and_events(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    [created] = put(client, a.bearer, order("unpaid"))
    assert created["result"] == "created"
    [paid] = put(client, a.bearer, order("paid", status_at="2026-11-20T10:05:00+08:00"))
    assert paid["result"] == "updated" and paid["order_id"] == created["order_id"]
    [again] = put(client, a.bearer, order("paid", status_at="2026-11-20T10:05:00+08:00"))
    assert again["result"] == "unchanged"
    [back] = put(client, a.bearer, order("unpaid"))
    assert back["result"] == "rejected" and "step back" in back["reason"]
    [shipped] = put(client, a.bearer, order("shipped"))
    [cancel] = put(client, a.bearer, order("cancelled", paid_fen=0))
    assert shipped["result"] == "updated" and cancel["result"] == "rejected" and "refund" in cancel["reason"]

    detail = client.get(f"/api/v1/orders/{created['order_id']}", headers=a.bearer).json()
    assert [(t["from_status"], t["to_status"]) for t in detail["timeline"]] == [
        (None, "unpaid"),
        ("unpaid", "paid"),
        ("paid", "shipped"),
    ]
    assert detail["order"]["receiver_name_masked"] == "李*"
    assert detail["order"]["receiver_phone_masked"] == "138****5678"
    assert detail["items"] == [{"sku": "SKU010000", "quantity": 2, "unit_price_fen": 12900, "amount_fen": 25800}]
    # The status changes are events on the buyer's profile, each once.
    profile = client.get(f"/api/v1/profiles/{detail['buyer_profile_id']}", headers=a.bearer).json()
    assert sorted(e["event"] for e in profile["events"]) == ["Order Created", "Order Paid", "Order Shipped"]
    assert [o["order_no"] for o in profile["orders"]] == ["3000000000001"]
    kinds = {(i["kind"], i["scope"]) for i in profile["identities"]}
    assert ("taobao_nick", "taobao") in kinds
    listed = client.get("/api/v1/orders", params={"platform": "tmall", "status": "shipped"}, headers=a.bearer).json()
    assert [o["order_no"] for o in listed["items"]] == ["3000000000001"]


def test_bad_orders_are_refused_with_reasons(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    over = client.put("/api/v1/orders", json={"orders": [order("paid", paid_fen=99999)]}, headers=a.bearer)
    assert over.status_code == 422 and "paid_fen cannot exceed total_fen" in over.text
    naive = client.put(
        "/api/v1/orders", json={"orders": [order("paid", ordered_at="2026-11-20T10:00:00")]}, headers=a.bearer
    )
    assert naive.status_code == 422
    [bad_buyer, ok] = put(
        client,
        a.bearer,
        order("paid", order_no="1", buyer={"kind": "openid", "id": "o123"}),
        order("paid", order_no="2"),
    )
    assert bad_buyer["result"] == "rejected" and "app id" in bad_buyer["reason"]
    assert ok["result"] == "created"


def test_products_upsert_by_sku(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    body = {
        "products": [{"sku": "SKU1", "name": "修护面霜", "category": "护肤/面霜", "brand": "溪谷", "price_fen": 29900}]
    }
    assert client.put("/api/v1/products", json=body, headers=a.bearer).json() == {"SKU1": "created"}
    assert client.put("/api/v1/products", json=body, headers=a.bearer).json() == {"SKU1": "unchanged"}
    body["products"][0]["price_fen"] = 25900
    assert client.put("/api/v1/products", json=body, headers=a.bearer).json() == {"SKU1": "updated"}
    listed = client.get("/api/v1/products", headers=a.bearer).json()["items"]
    assert [(p["sku"], p["price_fen"]) for p in listed] == [("SKU1", 25900)]
