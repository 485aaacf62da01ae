"""Test then send the winner, variants over send time and hook product, and recurring campaigns:
a test goes to its share only and the rest wait; the winner is picked only when significantly
best, else an operator chooses; the rest are sent once. A variant's delay and values reach its
messages. A recurring campaign makes one occurrence per time, for new people only when asked,
and completes after its last day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.campaigns import run as campaign_run
from siyu.campaigns.abtest import Arm
from siyu.campaigns.recurrence import next_occurrence, recurrence_problems
from siyu.campaigns.recurring import occur
from siyu.campaigns.run import WAITING, in_test, run_campaign, variant_of
from siyu.campaigns.tables import Campaign, CampaignRecipient
from siyu.campaigns.winner import decide, judge
from siyu.channels.adapters.base import MemoryTokenStore
from siyu.channels.dispatch import Dispatcher
from siyu.channels.prepare import Links
from siyu.jobs.tables import Job
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from siyu.tracking.tables import Link
from tests import test_campaigns
from tests.conftest import TEST_SECRET
from tests.test_campaigns import PEOPLE, Brand, create, ledger
from tests.test_tracking import follow

PUBLIC = "https://crm.brand.example"
SHANGHAI = "Asia/Shanghai"  # the workspace's time zone
brand = test_campaigns.brand  # the fixtures
worker_settings = test_campaigns.worker_settings
TEST = {"percent": 70, "metric": "ctr", "hours": 4}


def link_templates(client: TestClient, b: Brand) -> list[str]:
    ids = []
    for key in ("A", "B"):
        t = {
            "name": f"测-{key}",
            "channel": "sms",
            "kind": "marketing",
            "body": f"{key}会场 {{{{ link }}}} 拒收请回复R",
        }
        t["link"] = f"https://shop.example/{key}"
        made = client.post("/api/v1/templates", json=t, headers=b.actor.bearer)
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    return ids


def campaign_with_a_test(
    client: TestClient, b: Brand, ids: list[str] | None = None
) -> tuple[dict[str, Any], dict[str, list[str]], list[str]]:
    """A campaign whose draw puts at least three people in each variant's test and two aside
    (whatever the people's ids: drafts are made until one draws so)."""
    ids = ids or link_templates(client, b)
    variants = [{"key": "A", "template_id": ids[0], "share": 50}, {"key": "B", "template_id": ids[1], "share": 50}]
    for _ in range(40):
        c = create(client, b, variants=variants, test=TEST)
        tested = [p for p in b.people if in_test(c["id"], TEST["percent"], p)]
        arms = {k: [p for p in tested if variant_of(c["id"], c["variants"], p) == k] for k in ("A", "B")}
        waiting = [p for p in b.people if p not in tested]
        if min(len(v) for v in arms.values()) >= 3 and len(waiting) >= 2:
            return c, arms, waiting
    raise AssertionError("no draft drew a usable test")


def run(db: Database, b: Brand, campaign_id: str) -> str:
    return run_campaign(db, b.actor.workspace_id, campaign_id, Links(PUBLIC, TEST_SECRET)).status


def codes(db: Database, b: Brand) -> dict[str, str]:
    with db.read(Scope.workspace(b.actor.workspace_id)) as s:
        return {r.profile_id: r.code for r in s.scalars(select(Link))}


def test_the_winner_is_only_the_significantly_best() -> None:
    assert judge([Arm("A", 1000, 100), Arm("B", 1000, 60)]).winner == "A"
    assert judge([Arm("A", 1000, 60), Arm("B", 1000, 100), Arm("C", 1000, 70)]).winner == "B"
    close = judge([Arm("A", 1000, 100), Arm("B", 1000, 95)])
    assert (close.winner == "" and "not" in close.reason) or "no variant" in close.reason
    assert judge([Arm("A", 0, 0), Arm("B", 0, 0)]).winner == ""


def test_a_test_goes_to_its_share_and_the_winner_to_the_rest(client: TestClient, db: Database, brand: Brand) -> None:
    h, ws = brand.actor.bearer, brand.actor.workspace_id
    c, arms, waiting = campaign_with_a_test(client, brand)
    assert client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h).status_code == 200
    assert run(db, brand, c["id"]) == "testing"
    sent = {m.profile_id for m in ledger(db, brand, c["id"])}
    assert sent == set(arms["A"] + arms["B"]) and not sent & set(waiting)
    progress = client.get(f"/api/v1/campaigns/{c['id']}/progress", headers=h).json()
    assert progress["variants"][WAITING] == len(waiting)
    with db.read(Scope.workspace(ws)) as s:
        job = s.scalars(select(Job).where(Job.task == "campaigns.decide")).one()
        row = s.scalars(select(Campaign).where(Campaign.id == c["id"])).one()
        assert row.launched_at is not None and job.run_at == row.launched_at + timedelta(hours=4)
    Dispatcher(db, ws, TEST_SECRET, MemoryTokenStore()).run()
    links = codes(db, brand)
    for p in arms["A"]:  # everyone tested on A clicks, nobody on B
        assert follow(client, links[p]).status_code == 302
    standing = client.get(f"/api/v1/campaigns/{c['id']}/test", headers=h).json()
    assert standing["winner"] == "A" and standing["comparison"]["significant"]
    assert {a["key"]: (a["trials"], a["successes"]) for a in standing["arms"]} == {
        "A": (len(arms["A"]), len(arms["A"])),
        "B": (len(arms["B"]), 0),
    }
    with db.transaction(Scope.workspace(ws)) as s:
        decision = decide(s, c["id"])
        assert decision is not None and decision.winner == "A"
    with db.transaction(Scope.workspace(ws)) as s:
        assert decide(s, c["id"]) is None  # decided once
    after = client.get(f"/api/v1/campaigns/{c['id']}", headers=h).json()
    assert (after["status"], after["phase"], after["winner"]) == ("running", "rest", "A")
    assert "automatically" in after["problem"]
    assert run(db, brand, c["id"]) == "completed" and run(db, brand, c["id"]) == "completed"
    rows = ledger(db, brand, c["id"])
    assert sorted(m.profile_id for m in rows) == sorted(brand.people)  # each once
    for m in rows:
        if m.profile_id in waiting:
            assert "A会场" in m.content["text"], m.content["text"]
    report = client.get(f"/api/v1/campaigns/{c['id']}/report", headers=h).json()
    funnels = {f["key"]: f for f in report["variants"]}
    assert funnels["A"]["audience"] == len(arms["A"]) + len(waiting) and funnels["B"]["audience"] == len(arms["B"])


def test_without_a_significant_winner_an_operator_chooses(client: TestClient, db: Database, brand: Brand) -> None:
    h, ws = brand.actor.bearer, brand.actor.workspace_id
    c, _, waiting = campaign_with_a_test(client, brand)
    client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h)
    assert client.post(f"/api/v1/campaigns/{c['id']}/winner", json={"variant": "B"}, headers=h).status_code == 409
    assert run(db, brand, c["id"]) == "testing"
    with db.transaction(Scope.workspace(ws)) as s:
        decision = decide(s, c["id"])
        assert decision is not None and decision.winner == ""
    waiting_now = client.get(f"/api/v1/campaigns/{c['id']}", headers=h).json()
    assert waiting_now["status"] == "testing" and "no variant is significantly best" in waiting_now["problem"]
    bad = client.post(f"/api/v1/campaigns/{c['id']}/winner", json={"variant": "Z"}, headers=h)
    assert bad.status_code == 422
    chosen = client.post(f"/api/v1/campaigns/{c['id']}/winner", json={"variant": "B"}, headers=h).json()
    assert (chosen["status"], chosen["winner"]) == ("running", "B")
    assert run(db, brand, c["id"]) == "completed"
    for m in ledger(db, brand, c["id"]):
        if m.profile_id in waiting:
            assert "B会场" in m.content["text"]
    assert len(ledger(db, brand, c["id"])) == PEOPLE

    other, _, kept = campaign_with_a_test(client, brand, [v["template_id"] for v in c["variants"]])
    client.post(f"/api/v1/campaigns/{other['id']}/schedule", headers=h)
    assert run(db, brand, other["id"]) == "testing"
    none = client.post(f"/api/v1/campaigns/{other['id']}/winner", json={"variant": None}, headers=h).json()
    assert none["status"] == "completed" and "not sent" in none["problem"]
    assert not {m.profile_id for m in ledger(db, brand, other["id"])} & set(kept)


def test_a_test_needs_two_variants_and_sane_settings(client: TestClient, brand: Brand) -> None:
    h = brand.actor.bearer
    one = [{"key": "A", "template_id": brand.templates["A"], "share": 100}]
    body = {"name": "x", "segment_id": brand.segment, "variants": one, "test": TEST}
    refused = client.post("/api/v1/campaigns", json=body, headers=h)
    assert refused.status_code == 422 and refused.json()["details"]["problems"][0]["where"] == "test"
    body = {
        **body,
        "variants": [{**one[0], "share": 50}, {"key": "B", "template_id": brand.templates["B"], "share": 50}],
    }
    assert client.post("/api/v1/campaigns", json={**body, "test": {**TEST, "hours": 0}}, headers=h).status_code == 422


def test_a_variants_send_time_and_values_reach_its_messages(client: TestClient, db: Database, brand: Brand) -> None:
    h = brand.actor.bearer
    variants = [
        {"key": "A", "template_id": brand.templates["B"], "share": 50},
        {"key": "B", "template_id": brand.templates["B"], "share": 50, "delay_minutes": 120},
    ]
    variants[1]["values"] = {"coupon": "新品试用装"}
    c = create(client, brand, variants=variants)
    assert c["variants"][1]["delay_minutes"] == 120 and c["variants"][1]["values"] == {"coupon": "新品试用装"}
    client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h)
    assert run(db, brand, c["id"]) == "completed"
    launched = datetime.fromisoformat(client.get(f"/api/v1/campaigns/{c['id']}", headers=h).json()["launched_at"])
    drawn = {p: variant_of(c["id"], c["variants"], p) for p in brand.people}
    for m in ledger(db, brand, c["id"]):
        if drawn[m.profile_id] == "B":
            assert "新品试用装" in m.content["text"]
            assert m.not_before == launched + timedelta(minutes=120)
        else:
            assert "满199减30" in m.content["text"] and m.not_before <= launched + timedelta(seconds=5)
    too_late = [{**variants[1], "share": 100, "delay_minutes": 8 * 24 * 60}]
    assert client.post("/api/v1/campaigns", json={"name": "x", "variants": too_late}, headers=h).status_code == 422


def test_the_next_time_a_campaign_comes_round() -> None:
    daily = {"every": "day", "at": "09:30"}
    at = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert next_occurrence(daily, at, "Asia/Shanghai") == datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
    assert next_occurrence(daily, datetime(2026, 11, 24, 1, 30, tzinfo=UTC), "Asia/Shanghai") == datetime(
        2026, 11, 25, 1, 30, tzinfo=UTC
    )
    weekly = {"every": "week", "at": "20:00", "weekdays": [5, 6]}  # 2026-11-24 is a Tuesday
    assert next_occurrence(weekly, at, "Asia/Shanghai") == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert (
        next_occurrence({**daily, "until": "2026-11-24"}, datetime(2026, 11, 24, 2, tzinfo=UTC), "Asia/Shanghai")
        is None
    )
    wrong = dict(recurrence_problems({"every": "month", "at": "9:30", "weekdays": [8], "until": "soon", "x": 1}))
    assert set(wrong) == {"recurrence", "recurrence.every", "recurrence.at", "recurrence.until"}
    assert "recurrence.weekdays" in dict(recurrence_problems({"every": "week", "at": "09:00", "weekdays": [0]}))


def test_a_recurring_campaign_sends_each_time_to_new_people_only(
    client: TestClient, db: Database, brand: Brand, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, ws = brand.actor.bearer, brand.actor.workspace_id
    daily = {"every": "day", "at": "09:30"}
    first = next_occurrence(daily, datetime.now(UTC), SHANGHAI)
    assert first is not None
    last_day = (first + timedelta(days=1)).astimezone(ZoneInfo(SHANGHAI)).date().isoformat()
    recurrence = {**daily, "until": last_day, "new_only": True}
    c = create(client, brand, recurrence=recurrence)
    scheduled = client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h).json()
    assert scheduled["status"] == "recurring" and scheduled["next_at"]
    first_at = datetime.fromisoformat(scheduled["next_at"])
    with db.transaction(Scope.workspace(ws)) as s:
        child = occur(s, c["id"], first_at)
        assert child is not None and child.status == "scheduled" and child.parent_id == c["id"], child.problem
        first_id = child.id
    with db.transaction(Scope.workspace(ws)) as s:
        assert occur(s, c["id"], first_at) is None  # the same time: no second copy
    assert run(db, brand, first_id) == "scheduled"  # not yet its time
    monkeypatch.setattr(campaign_run, "utcnow", lambda: first_at + timedelta(seconds=1))
    assert run(db, brand, first_id) == "completed"
    assert sorted(m.profile_id for m in ledger(db, brand, first_id)) == sorted(brand.people)
    parent = client.get(f"/api/v1/campaigns/{c['id']}", headers=h).json()
    second_at = datetime.fromisoformat(parent["next_at"])
    assert parent["status"] == "recurring" and second_at == first_at + timedelta(days=1)
    with db.transaction(Scope.workspace(ws)) as s:
        second = occur(s, c["id"], second_at)
        assert second is not None
        second_id = second.id
    monkeypatch.setattr(campaign_run, "utcnow", lambda: second_at + timedelta(seconds=1))
    assert run(db, brand, second_id) == "completed"
    assert ledger(db, brand, second_id) == []  # everyone had the first
    with db.read(Scope.workspace(ws)) as s:
        assert s.scalars(select(CampaignRecipient).where(CampaignRecipient.campaign_id == second_id)).all() == []
    listed = client.get("/api/v1/campaigns", params={"parent_id": c["id"]}, headers=h).json()["items"]
    assert {x["id"] for x in listed} == {first_id, second_id}
    assert client.get(f"/api/v1/campaigns/{c['id']}", headers=h).json()["status"] == "completed"  # past its last day


def test_a_recurring_campaign_can_be_paused_and_an_unsendable_time_is_kept_with_its_reason(
    client: TestClient, db: Database, brand: Brand
) -> None:
    h, ws = brand.actor.bearer, brand.actor.workspace_id
    c = create(client, brand, recurrence={"every": "week", "at": "10:00", "weekdays": [1, 2, 3, 4, 5, 6, 7]})
    client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h)
    assert client.post(f"/api/v1/campaigns/{c['id']}/pause", headers=h).json()["status"] == "paused"
    resumed = client.post(f"/api/v1/campaigns/{c['id']}/resume", headers=h).json()
    assert resumed["status"] == "recurring"
    assert client.delete(f"/api/v1/templates/{brand.templates['B']}", headers=h).status_code == 204
    with db.transaction(Scope.workspace(ws)) as s:
        child = occur(s, c["id"], datetime.fromisoformat(resumed["next_at"]))
        assert child is not None and child.status == "cancelled" and "no longer exists" in child.problem
    assert client.get(f"/api/v1/campaigns/{c['id']}", headers=h).json()["status"] == "recurring"
    cancelled = client.post(f"/api/v1/campaigns/{c['id']}/cancel", headers=h).json()
    assert cancelled["status"] == "cancelled" and cancelled["next_at"] is None
    weekly = {"every": "week", "at": "10:00"}
    bad = client.post(
        "/api/v1/campaigns", json={"name": "x", "variants": c["variants"], "recurrence": weekly}, headers=h
    )
    assert bad.status_code == 422 and bad.json()["details"]["problems"][0]["where"] == "recurrence.weekdays"


def test_a_campaign_goes_to_an_uploaded_list(client: TestClient, db: Database, brand: Brand) -> None:
    h = brand.actor.bearer
    rows = "手机号\n13900000003\n139-0000-0005\n13900000003\n12345\n\n18800000000\n"
    files = {"file": ("双11名单.csv", rows.encode(), "text/csv")}
    made = client.post("/api/v1/segments/file", data={"name": "上传名单", "kind": "phone"}, files=files, headers=h)
    assert made.status_code == 201, made.text
    got = made.json()
    assert (got["rows"], got["people"], got["segment"]["kind"], got["segment"]["people"]) == (5, 2, "static", 2)
    reasons = {r["row"]: r["reason"] for r in got["rejected"]}
    assert set(reasons) == {5, 7} and "no one has this identifier" in reasons[7]  # by the line in the file
    c = create(client, brand, segment_id=got["segment"]["id"])
    assert client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h).status_code == 200
    assert run(db, brand, c["id"]) == "completed"
    assert len(ledger(db, brand, c["id"])) == 2
    nobody = {"file": ("x.csv", b"phone\n18800000000\n", "text/csv")}
    refused = client.post("/api/v1/segments/file", data={"name": "空名单"}, files=nobody, headers=h)
    assert refused.status_code == 422 and refused.json()["details"]["rows"] == 1


def test_variants_can_lead_down_different_paths(client: TestClient, db: Database, brand: Brand) -> None:
    h = brand.actor.bearer
    t = {"name": "路径", "channel": "sms", "kind": "marketing", "body": "会员专享 {{ link }} 拒收请回复R"}
    t["link"] = "{{ campaign.page }}"
    made = client.post("/api/v1/templates", json=t, headers=h)
    assert made.status_code == 201, made.text
    pages = {"A": "https://crm.brand.example/p/abcdefgh", "B": "https://shop.example/mp?path=pages/sku/42"}
    variants = [
        {"key": k, "template_id": made.json()["id"], "share": 50, "values": {"page": page}} for k, page in pages.items()
    ]
    c = create(client, brand, variants=variants)
    client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h)
    assert run(db, brand, c["id"]) == "completed"
    drawn = {p: variant_of(c["id"], c["variants"], p) for p in brand.people}
    with db.read(Scope.workspace(brand.actor.workspace_id)) as s:
        targets = {r.profile_id: r.target for r in s.scalars(select(Link))}
    assert set(targets) == set(brand.people)
    for person, target in targets.items():
        got, meant = urlsplit(target), urlsplit(pages[drawn[person]])
        assert (got.netloc, got.path) == (meant.netloc, meant.path)
        query = parse_qs(got.query)
        assert query["utm_content"] == [drawn[person]] and all(query[k] == v for k, v in parse_qs(meant.query).items())
