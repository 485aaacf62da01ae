"""Attribution: an order paid within the window after a campaign's message converts and is
credited to the last touch (or the first, when the workspace says so) across campaigns — never
to two; orders outside the window, refunded or cancelled earn nothing; revenue, cost and ROI per
variant; and the uplift of the people reached over the campaign's holdout."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from siyu.campaigns.run import run_campaign
from siyu.channels.adapters.base import MemoryTokenStore
from siyu.channels.dispatch import Dispatcher
from siyu.channels.prepare import Links
from siyu.channels.tables import Message
from siyu.commerce.tables import Order
from siyu.identity.tables import Identity
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import TEST_SECRET
from tests.test_campaigns import Brand, brand, create, worker_settings  # noqa: F401 - fixtures


def order(s: object, identity_id: str, n: int, paid_at: datetime, fen: int, **more: object) -> None:
    s.add(  # type: ignore[attr-defined]
        Order(
            platform="tmall", order_no=f"T{n}", buyer_identity_id=identity_id, buyer_kind="phone", buyer_id=str(n),
            status="paid", total_fen=fen, paid_fen=fen, ordered_at=paid_at, paid_at=paid_at, **more,
        )
    )  # fmt: skip


def test_orders_after_a_touch_are_credited_once_and_the_holdout_measures_uplift(
    client: TestClient,
    db: Database,
    brand: Brand,  # noqa: F811
) -> None:
    h = brand.actor.bearer
    for attempt in range(30):  # people's ids are random: take a holdout that sets aside 2 to 7 of the 12
        holdout = client.post("/api/v1/holdouts", json={"name": f"对照{attempt}", "share_bp": 3000}, headers=h).json()
        params = {"profile_id": brand.people}
        held_now = client.get(f"/api/v1/holdouts/{holdout['id']}/check", params=params, headers=h).json()["held_out"]
        if 2 <= len(held_now) <= 7:
            break
    settings = {"approval_threshold": 50_000, "costs": {"sms": 5}, "window_hours": 72}
    assert client.put("/api/v1/campaigns/settings", json=settings, headers=h).status_code == 200
    c = create(client, brand, holdout_id=holdout["id"])
    client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h)
    run_campaign(db, brand.actor.workspace_id, c["id"], Links("http://t.example", TEST_SECRET))
    Dispatcher(db, brand.actor.workspace_id, TEST_SECRET, MemoryTokenStore()).run()
    scope = Scope.workspace(brand.actor.workspace_id)
    with db.transaction(scope) as s:
        sent = {m.profile_id: (m.status, m.reason, m.sent_at) for m in s.scalars(select(Message))}
        phone = {i.profile_id: i.id for i in s.scalars(select(Identity).where(Identity.kind == "phone"))}
        reached = sorted(p for p, (status, _, _) in sent.items() if status == "sent")
        held = sorted(p for p, (_, reason, _) in sent.items() if reason == "holdout")
        assert len(reached) >= 4 and held, (reached, held)
        at = {p: sent[p][2] for p in reached}
        first, late, refunded, stolen = reached[:4]
        order(s, phone[first], 1, at[first] + timedelta(hours=1), 19_900)  # converts
        order(s, phone[first], 2, at[first] + timedelta(hours=2), 5_000)  # a second order: one person, two orders
        order(s, phone[late], 3, at[late] + timedelta(days=4), 9_900)  # after the 72-hour window
        order(
            s,
            phone[refunded],
            4,
            at[refunded] + timedelta(hours=1),
            9_900,
            refunded_at=at[refunded] + timedelta(days=1),
        )
        # Another campaign reached `stolen` after this one, before their order: the last touch is theirs.
        s.add(
            Message(
                key="campaign:cmp_other:1:x", channel="sms", kind="marketing", address="+8613900000999",
                profile_id=stolen, source="campaign:cmp_other", status="sent", content={},
                sent_at=at[stolen] + timedelta(minutes=30),
            )
        )  # fmt: skip
        order(s, phone[stolen], 5, at[stolen] + timedelta(hours=1), 30_000)
        order(s, phone[held[0]], 6, at[first] + timedelta(hours=3), 12_000)  # the holdout buys too

    report = client.get(f"/api/v1/campaigns/{c['id']}/report", headers=h).json()
    total = report["total"]
    assert (total["converted"], total["orders"], total["revenue_fen"]) == (1, 2, 24_900)
    assert total["cost_fen"] == 5 * len(reached) and total["roi"] == (24_900 - 5 * len(reached)) / (5 * len(reached))
    by_key = {f["key"]: f for f in report["variants"]}
    assert sum(f["revenue_fen"] for f in by_key.values()) == 24_900
    uplift = report["uplift"]
    assert (uplift["reached"], uplift["reached_buyers"], uplift["held_out"], uplift["held_buyers"]) == (
        len(reached), 2, len(held), 1
    )  # fmt: skip
    assert uplift["uplift"] == 2 / len(reached) - 1 / len(held)  # first and stolen bought; late, refunded did not
    assert report["attribution"] == "last_touch" and report["conversion"]["metric"] == "conversion_rate"
    assert report["channels"] == [{"channel": "sms", "converted": 1, "orders": 2, "revenue_fen": 24_900}]

    sheet = client.get(f"/api/v1/campaigns/{c['id']}/report/export", headers=h)
    assert sheet.status_code == 200 and sheet.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    total_row = next(r for r in rows if r and r[0] == "total")
    assert rows[0][:2] == ["variant", "audience"] and total_row[11] == "249.00"
    assert rows[-2] == ["channel", "converted", "orders", "revenue (yuan)"] and rows[-1] == ["sms", "1", "2", "249.00"]
    book = load_workbook(
        io.BytesIO(client.get(f"/api/v1/campaigns/{c['id']}/report/export?format=xlsx", headers=h).content)
    )
    cells = [[c.value for c in row] for row in book.active.iter_rows()]
    assert cells[-1][:4] == ["sms", "1", "2", "249.00"] and len(cells) == len(rows)

    first_touch = {**settings, "attribution": "first_touch"}
    assert client.put("/api/v1/campaigns/settings", json=first_touch, headers=h).status_code == 200
    again = client.get(f"/api/v1/campaigns/{c['id']}/report", headers=h).json()["total"]
    assert (again["converted"], again["orders"], again["revenue_fen"]) == (2, 3, 54_900)  # ours came first
    bad = client.put("/api/v1/campaigns/settings", json={**settings, "attribution": "linear"}, headers=h)
    assert bad.status_code == 422
