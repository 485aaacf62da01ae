"""Dashboard counts and the daily trend in the workspace's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from siyu.commerce.facade import insert_order_rows
from siyu.core.ids import new_id
from siyu.ingest.facade import DerivedEvent, append_derived_events, insert_event_rows
from siyu.profiles.facade import insert_profile_rows
from siyu.reports.facade import dashboard
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import make_actor


def _order(at: datetime, paid_fen: int) -> dict[str, object]:
    return {
        "id": new_id("ord_"),
        "platform": "tmall",
        "order_no": new_id(),
        "buyer_kind": "taobao_nick",
        "buyer_id": "lele1",
        "status": "paid" if paid_fen else "cancelled",
        "total_fen": 19900,
        "paid_fen": paid_fen,
        "ordered_at": at,
    }


def test_trend_buckets_by_local_day(db: Database) -> None:
    actor = make_actor(db, "acme")
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai
    late_evening = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)  # 01:30 on the 21st in Shanghai
    with db.transaction(Scope.workspace(actor.workspace_id)) as s:
        insert_profile_rows(s, [{"id": new_id("pf_"), "display_name": "王芳", "traits": {}}])
        insert_order_rows(
            s,
            [
                _order(late_evening, 19900),
                _order(late_evening - timedelta(hours=2), 0),
                _order(now - timedelta(days=40), 500),
            ],
        )
        insert_event_rows(
            s,
            [
                {
                    "id": new_id("evt_"),
                    "message_id": "m1",
                    "type": "track",
                    "event": "OA Followed",
                    "timestamp": late_evening,
                }
            ],
        )
        # What siyu derives itself (a tag added …) is not behaviour: not counted.
        derived = DerivedEvent("tag:t1:p1:added:1", "Tag Added", new_id("idn_"), {}, late_evening, "tags")
        assert append_derived_events(s, [derived], now) == 1
    with db.transaction(Scope.workspace(actor.workspace_id)) as s:
        board = dashboard(s, timezone="Asia/Shanghai", days=30, now=now)
    assert (board.profiles, board.orders, board.events) == (1, 3, 1)
    assert len(board.trend) == 30 and board.trend[-1].day.isoformat() == "2026-11-21"
    by_day = {p.day.isoformat(): p for p in board.trend}
    assert (by_day["2026-11-21"].orders, by_day["2026-11-21"].paid_fen, by_day["2026-11-21"].events) == (1, 19900, 1)
    assert by_day["2026-11-20"].orders == 1 and by_day["2026-11-20"].paid_fen == 0
    assert sum(p.orders for p in board.trend) == 2  # the 40-day-old order is outside the window


def test_dashboard_api(client: TestClient, db: Database) -> None:
    actor = make_actor(db, "acme")
    r = client.get("/api/v1/dashboard", headers=actor.bearer)
    assert r.status_code == 200
    body = r.json()
    assert body["timezone"] == "Asia/Shanghai" and len(body["trend"]) == 30
    assert client.get("/api/v1/dashboard", params={"days": 0}, headers=actor.bearer).status_code == 422
