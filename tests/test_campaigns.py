"""Campaigns: drafts checked for their shape, campaigns that cannot go refused with every reason,
the large-send guard, variants drawn stably by share, a run that hands each person to the
ledger exactly once — cut short or failing halfway, run again — and pause, resume and cancel
holding, releasing and dropping the messages waiting in the ledger."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from siyu.accounts.contracts import Role
from siyu.campaigns import run as campaign_run
from siyu.campaigns.library import CampaignDraft, VariantDraft, shape_problems, source_of
from siyu.campaigns.run import run_campaign, variant_of
from siyu.channels import facade as channels
from siyu.channels.adapters.base import MemoryTokenStore
from siyu.channels.dispatch import Dispatcher
from siyu.channels.prepare import Links
from siyu.channels.tables import Message
from siyu.core.clock import utcnow
from siyu.core.settings import get_settings
from siyu.jobs.tables import Job
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import TEST_SECRET, Actor, login, make_actor

LINKS = Links("https://crm.brand.example", TEST_SECRET)
PEOPLE = 12


@pytest.fixture(autouse=True)
def worker_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SIYU_SECRET_KEY", TEST_SECRET)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


class Brand:
    def __init__(self, actor: Actor, people: list[str], segment: str, templates: dict[str, str]) -> None:
        self.actor, self.people, self.segment, self.templates = actor, people, segment, templates


@pytest.fixture
def brand(client: TestClient, db: Database) -> Brand:
    a = make_actor(db, "acme")
    ids = []
    for i in range(PEOPLE):
        phone = f"139000000{i:02d}"
        body = {"userId": f"u{i}", "traits": {"phone": phone, "name": f"会员{i}"}}
        assert client.post("/v1/identify", json=body, auth=(a.ingest_key, "")).status_code == 200
        record = {
            "address": {"kind": "phone", "value": phone}, "channel": "sms", "purpose": "marketing",
            "status": "granted", "at": "2026-11-01T00:00:00Z", "source": "form", "proof": {"text_version": "v1"},
        }  # fmt: skip
        assert client.post("/api/v1/consents", json={"records": [record]}, headers=a.bearer).status_code == 201
        ids.append(client.get("/api/v1/profiles", params={"q": phone}, headers=a.bearer).json()["items"][0]["id"])
    policy = {"quiet_hours": {}, "caps": [], "sensitive_words": ""}
    assert client.put("/api/v1/channels/policy", json=policy, headers=a.bearer).status_code == 200
    account = {"channel": "sms", "provider": "sandbox", "name": "sb", "settings": {"sign_name": "私域美妆"}}
    assert client.post("/api/v1/channels/accounts", json=account, headers=a.bearer).status_code == 201
    templates = {}
    bodies = {"A": "{{ profile.name }}，双11回馈 拒收请回复R", "B": "{{ campaign.coupon }} 限时券 拒收请回复R"}
    for key, body in bodies.items():
        t = {"name": f"双11-{key}", "channel": "sms", "kind": "marketing", "body": body}
        made = client.post("/api/v1/templates", json=t, headers=a.bearer)
        assert made.status_code == 201, made.text
        templates[key] = made.json()["id"]
    segment = client.post(
        "/api/v1/segments", json={"name": "双11名单", "kind": "static", "profile_ids": ids}, headers=a.bearer
    )
    assert segment.status_code == 201, segment.text
    return Brand(a, ids, segment.json()["id"], templates)


def campaign_body(b: Brand, **more: Any) -> dict[str, Any]:
    return {
        "name": "双11预热",
        "segment_id": b.segment,
        "variants": [
            {"key": "A", "template_id": b.templates["A"], "share": 50},
            {"key": "B", "template_id": b.templates["B"], "share": 50},
        ],
        "values": {"coupon": "满199减30"},
        **more,
    }


def create(client: TestClient, b: Brand, **more: Any) -> dict[str, Any]:
    made = client.post("/api/v1/campaigns", json=campaign_body(b, **more), headers=b.actor.bearer)
    assert made.status_code == 201, made.text
    return dict(made.json())


def ledger(db: Database, b: Brand, campaign_id: str) -> list[Message]:
    with db.read(Scope.workspace(b.actor.workspace_id)) as s:
        rows = list(s.scalars(select(Message).where(Message.source == source_of(campaign_id))))
        s.expunge_all()
    return rows


def run(db: Database, b: Brand, campaign_id: str, budget: float = 240.0) -> campaign_run.RunReport:
    return run_campaign(db, b.actor.workspace_id, campaign_id, LINKS, budget_seconds=budget)


def test_variants_are_drawn_stably_by_their_shares() -> None:
    variants = [{"key": "A", "share": 20}, {"key": "B", "share": 30}, {"key": "C", "share": 50}]
    people = [f"pf_{i:06d}" for i in range(20_000)]
    drawn = Counter(variant_of("cmp_1", variants, p) for p in people)
    for key, share in (("A", 0.2), ("B", 0.3), ("C", 0.5)):
        assert abs(drawn[key] / len(people) - share) < 0.015
    assert [variant_of("cmp_1", variants, p) for p in people[:50]] == [
        variant_of("cmp_1", variants, p) for p in people[:50]
    ]
    other = Counter(variant_of("cmp_1", variants, p) == variant_of("cmp_2", variants, p) for p in people)
    assert other[False] > 0.4 * len(people)  # each campaign draws afresh


def test_a_draft_with_a_bad_shape_says_everything_wrong_with_it() -> None:
    draft = CampaignDraft(
        name=" ",
        segment_id=None,
        variants=(VariantDraft("A", "t1", 60), VariantDraft("A", "t2", 30), VariantDraft("ab", "t3", 0)),
        values={"Bad-Name": "x", "ok": True},
    )
    wheres = {p.where for p in shape_problems(draft)}
    assert wheres == {
        "name", "variants[1].key", "variants[2].key", "variants[2].share", "variants", "values", "values.ok"
    }  # fmt: skip


def test_a_campaign_that_cannot_go_is_not_scheduled_and_says_why(
    client: TestClient, db: Database, brand: Brand
) -> None:
    h = brand.actor.bearer
    empty = client.post("/api/v1/segments", json={"name": "空", "kind": "static", "profile_ids": []}, headers=h).json()
    c = create(client, brand, segment_id=empty["id"], scheduled_at="2020-01-01T00:00:00Z")
    assert client.delete(f"/api/v1/templates/{brand.templates['B']}", headers=h).status_code == 204
    refused = client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h)
    assert refused.status_code == 422
    problems = {p["where"]: p["message"] for p in refused.json()["details"]["problems"]}
    assert set(problems) == {"segment_id", "variants[1].template_id", "scheduled_at"}
    assert "nobody" in problems["segment_id"] and "no longer exists" in problems["variants[1].template_id"]
    review = client.post(f"/api/v1/campaigns/{c['id']}/review", headers=h).json()
    assert {p["where"] for p in review["problems"]} == set(problems)
    assert client.get(f"/api/v1/campaigns/{c['id']}", headers=h).json()["status"] == "draft"
    with db.read(Scope.workspace(brand.actor.workspace_id)) as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.task == "campaigns.run")) == 0
    unknown = client.post("/api/v1/campaigns/cmp_nothing/schedule", headers=h)
    assert unknown.status_code == 404 and "cmp_nothing" not in unknown.text


def test_a_campaign_sends_once_to_each_person_with_their_variant(
    client: TestClient, db: Database, brand: Brand
) -> None:
    h = brand.actor.bearer
    c = create(client, brand)
    review = client.post(f"/api/v1/campaigns/{c['id']}/review", headers=h).json()
    assert review["problems"] == [] and review["audience"] == PEOPLE
    assert sum(v["total"] for v in review["variants"].values()) == PEOPLE
    scheduled = client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h).json()
    assert (scheduled["status"], scheduled["audience"], scheduled["needs_approval"]) == ("scheduled", PEOPLE, False)
    assert client.put(f"/api/v1/campaigns/{c['id']}", json=campaign_body(brand), headers=h).status_code == 409
    report = run(db, brand, c["id"])
    assert (report.status, report.prepared) == ("completed", PEOPLE)
    rows = ledger(db, brand, c["id"])
    assert sorted(m.profile_id for m in rows) == sorted(brand.people)
    drawn = {p: variant_of(c["id"], scheduled["variants"], p) for p in brand.people}
    for m in rows:
        text = m.content["text"]
        assert ("满199减30" in text) == (drawn[m.profile_id] == "B"), text
    assert run(db, brand, c["id"]).status == "completed"  # a second run finds nothing to do
    assert len(ledger(db, brand, c["id"])) == PEOPLE
    progress = client.get(f"/api/v1/campaigns/{c['id']}/progress", headers=h).json()
    assert progress["audience"] == progress["prepared"] == PEOPLE
    assert sum(progress["statuses"].values()) == PEOPLE and progress["variants"] == dict(Counter(drawn.values()))
    listed = client.get("/api/v1/campaigns", params={"status": "completed"}, headers=h).json()["items"]
    assert [x["id"] for x in listed] == [c["id"]]


def test_a_run_cut_short_or_failing_goes_on_without_sending_twice(
    client: TestClient, db: Database, brand: Brand, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = brand.actor.bearer
    c = create(client, brand, holdout_id=None)
    client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h)
    monkeypatch.setattr(campaign_run, "CHUNK", 5)
    first = run(db, brand, c["id"], budget=0.0)  # out of time after one chunk: the next run is queued
    assert (first.chunks, first.prepared, first.status) == (1, 5, "running")
    with db.read(Scope.workspace(brand.actor.workspace_id)) as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.task == "campaigns.run")) == 2

    real = channels.prepare

    def failing(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # the chunk's first messages are written, then the worker dies
        raise RuntimeError("the worker died")

    monkeypatch.setattr(channels, "prepare", failing)
    with pytest.raises(RuntimeError):
        run(db, brand, c["id"])
    assert len(ledger(db, brand, c["id"])) == 5  # the failed chunk left nothing behind
    monkeypatch.setattr(channels, "prepare", real)
    assert run(db, brand, c["id"]).status == "completed"
    rows = ledger(db, brand, c["id"])
    assert sorted(m.profile_id for m in rows) == sorted(brand.people)
    assert client.get(f"/api/v1/campaigns/{c['id']}", headers=h).json()["prepared"] == PEOPLE


def test_a_large_campaign_waits_for_an_admin(client: TestClient, db: Database, brand: Brand) -> None:
    h = brand.actor.bearer
    assert client.put("/api/v1/campaigns/settings", json={"approval_threshold": 10}, headers=h).status_code == 200
    c = create(client, brand)
    held = client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h).json()
    assert (held["status"], held["needs_approval"]) == ("awaiting_approval", True)
    assert run(db, brand, c["id"]).status == "awaiting_approval" and not ledger(db, brand, c["id"])
    operator = make_actor(db, "acme", role=Role.OPERATOR)
    csrf = login(client, operator.email)
    assert client.post(f"/api/v1/campaigns/{c['id']}/approve", headers={"X-CSRF-Token": csrf}).status_code == 403
    client.cookies.clear()
    approved = client.post(f"/api/v1/campaigns/{c['id']}/approve", headers=h).json()
    assert approved["status"] == "scheduled" and approved["approved_at"]
    assert run(db, brand, c["id"]).status == "completed"


def test_pause_holds_resume_releases_and_cancel_drops_waiting_messages(
    client: TestClient, db: Database, brand: Brand, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = brand.actor.bearer
    c = create(client, brand)
    client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h)
    monkeypatch.setattr(campaign_run, "CHUNK", 4)
    run(db, brand, c["id"], budget=0.0)
    assert Counter(m.status for m in ledger(db, brand, c["id"])) == {"queued": 4}
    assert client.post(f"/api/v1/campaigns/{c['id']}/pause", headers=h).json()["status"] == "paused"
    assert Counter(m.status for m in ledger(db, brand, c["id"])) == {"held": 4}
    assert run(db, brand, c["id"]).status == "paused"  # the queued run stops at once
    assert len(ledger(db, brand, c["id"])) == 4
    assert client.post(f"/api/v1/campaigns/{c['id']}/pause", headers=h).status_code == 409
    assert client.post(f"/api/v1/campaigns/{c['id']}/resume", headers=h).json()["status"] == "running"
    assert Counter(m.status for m in ledger(db, brand, c["id"])) == {"queued": 4}
    first = [m.id for m in ledger(db, brand, c["id"])]
    with db.transaction(Scope.workspace(brand.actor.workspace_id)) as s:  # the first four went out
        s.execute(update(Message).where(Message.id.in_(first)).values(status="sent", sent_at=utcnow()))
    run(db, brand, c["id"], budget=0.0)  # four more wait
    cancelled = client.post(f"/api/v1/campaigns/{c['id']}/cancel", headers=h).json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    got = Counter((m.status, m.reason) for m in ledger(db, brand, c["id"]))
    assert got == {("sent", ""): 4, ("skipped", "cancelled"): 4}
    assert run(db, brand, c["id"]).status == "cancelled"
    assert len(ledger(db, brand, c["id"])) == 8
    assert client.post(f"/api/v1/campaigns/{c['id']}/cancel", headers=h).status_code == 409


def test_a_fallback_template_reaches_who_the_first_cannot(client: TestClient, db: Database, brand: Brand) -> None:
    h = brand.actor.bearer
    account = {"channel": "wecom", "provider": "sandbox", "name": "企微", "settings": {"corp_id": "ww1c2d3e4f5a6b7c8d"}}
    assert client.post("/api/v1/channels/accounts", json=account, headers=h).status_code == 201
    wecom = {"name": "企微-双11", "channel": "wecom", "kind": "marketing", "body": "双11 会员专享，点开看看"}
    made = client.post("/api/v1/templates", json=wecom, headers=h)
    assert made.status_code == 201, made.text
    variants = [{"key": "A", "template_id": made.json()["id"], "share": 100, "fallbacks": [brand.templates["A"]]}]
    c = create(client, brand, variants=variants)
    assert c["variants"][0]["fallbacks"] == [brand.templates["A"]]
    assert client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h).status_code == 200
    assert run(db, brand, c["id"]).status == "completed"
    assert run(db, brand, c["id"]).status == "completed"  # again: nothing new, fallbacks included
    rows = ledger(db, brand, c["id"])
    first = {m.profile_id: (m.status, m.reason) for m in rows if m.key.startswith(f"campaign:{c['id']}:1:")}
    second = {m.profile_id: (m.channel, m.status) for m in rows if m.key.startswith(f"campaign:{c['id']}:2:")}
    assert set(first) == set(second) == set(brand.people) and len(rows) == 2 * PEOPLE
    assert set(first.values()) == {("skipped", "no_address")}  # nobody has a WeCom contact
    assert set(second.values()) == {("sms", "queued")}
    Dispatcher(db, brand.actor.workspace_id, TEST_SECRET, MemoryTokenStore()).run()
    report = client.get(f"/api/v1/campaigns/{c['id']}/report", headers=h).json()
    assert report["total"]["sent"] == PEOPLE and report["total"]["skipped"] == 0
    bad = campaign_body(brand, variants=[{**variants[0], "fallbacks": [made.json()["id"]]}])
    refused = client.post("/api/v1/campaigns", json=bad, headers=h)
    assert refused.status_code == 422 and refused.json()["details"]["problems"][0]["where"] == "variants[0].fallbacks"
