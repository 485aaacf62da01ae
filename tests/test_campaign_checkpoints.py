"""Checkpoints and auto-pause: launching a campaign queues its checkpoints (3, 6, 12, 24 hours)
and early guard checks; a checkpoint keeps the numbers as they stood, once; a delivery rate
below the campaign's floor or opt-outs above its ceiling pause it and hold what still waits."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from siyu.campaigns import run as campaign_run
from siyu.campaigns.checkpoints import CHECKPOINT_TASK, check
from siyu.campaigns.library import CampaignDraft, VariantDraft, shape_problems
from siyu.campaigns.run import run_campaign
from siyu.channels.adapters.base import MemoryTokenStore
from siyu.channels.dispatch import Dispatcher
from siyu.channels.prepare import Links
from siyu.channels.suppression import suppress_addresses
from siyu.channels.tables import Message
from siyu.identity.tables import Identity
from siyu.jobs.tables import Job
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import TEST_SECRET
from tests.test_campaign_attribution import order
from tests.test_campaigns import Brand, brand, create, worker_settings  # noqa: F401 - fixtures

LINKS = Links("http://t.example", TEST_SECRET)


def launch(client: TestClient, db: Database, b: Brand, monkeypatch: pytest.MonkeyPatch, **guards: object) -> str:
    """Launch a campaign with these guards, hand its first four people over and send them."""
    c = create(client, b, guards=guards)
    assert client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=b.actor.bearer).status_code == 200
    monkeypatch.setattr(campaign_run, "CHUNK", 4)
    assert run_campaign(db, b.actor.workspace_id, c["id"], LINKS, budget_seconds=0).status == "running"
    Dispatcher(db, b.actor.workspace_id, TEST_SECRET, MemoryTokenStore()).run()
    return str(c["id"])


def test_a_delivery_rate_below_the_floor_pauses_the_campaign(
    client: TestClient,
    db: Database,
    brand: Brand,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign_id = launch(client, db, brand, monkeypatch, min_delivery_rate=0.8, min_sent=4)
    scope = Scope.workspace(brand.actor.workspace_id)
    with db.transaction(scope) as s:
        jobs = Counter(j.payload["minutes"] for j in s.scalars(select(Job).where(Job.task == CHECKPOINT_TASK)))
        assert jobs == {10: 1, 30: 1, 60: 1, 180: 1, 360: 1, 720: 1, 1440: 1}
        sent = list(s.scalars(select(Message.id).where(Message.status == "sent")))
        assert len(sent) == 4
        s.execute(update(Message).where(Message.id.in_(sent[:2])).values(status="delivered"))
        s.execute(update(Message).where(Message.id.in_(sent[2:])).values(status="undelivered"))
        why = check(s, campaign_id, 10, snapshot=False)
    assert why is not None and "10 minutes after launch: delivery rate 50.0% is below 80.0%" in why
    got = client.get(f"/api/v1/campaigns/{campaign_id}", headers=brand.actor.bearer).json()
    assert got["status"] == "paused" and got["problem"] == why
    assert run_campaign(db, brand.actor.workspace_id, campaign_id, LINKS).status == "paused"  # nobody more
    with db.read(scope) as s:
        assert Counter(s.scalars(select(Message.status))) == {"delivered": 2, "undelivered": 2}


def test_a_finished_hand_over_is_paused_only_while_messages_wait(
    client: TestClient,
    db: Database,
    brand: Brand,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign_id = launch(client, db, brand, monkeypatch, min_delivery_rate=0.8, min_sent=4)
    scope = Scope.workspace(brand.actor.workspace_id)
    run_campaign(db, brand.actor.workspace_id, campaign_id, LINKS)  # the rest handed over: completed, 8 queued
    with db.transaction(scope) as s:
        sent = list(s.scalars(select(Message.id).where(Message.status == "sent")))
        s.execute(update(Message).where(Message.id.in_(sent)).values(status="undelivered"))
        why = check(s, campaign_id, 30, snapshot=False)
    assert why is not None and "delivery rate 0.0%" in why
    with db.read(scope) as s:
        assert Counter(s.scalars(select(Message.status))) == {"undelivered": 4, "held": 8}
    client.post(f"/api/v1/campaigns/{campaign_id}/resume", headers=brand.actor.bearer)
    assert run_campaign(db, brand.actor.workspace_id, campaign_id, LINKS).status == "completed"
    with db.transaction(scope) as s:
        s.execute(
            update(Message).where(Message.status == "queued").values(status="delivered", sent_at=Message.created_at)
        )
        assert check(s, campaign_id, 60, snapshot=False) is None  # all gone: nothing left to stop


def test_opt_outs_above_the_ceiling_pause_it_and_checkpoints_are_kept_once(
    client: TestClient,
    db: Database,
    brand: Brand,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign_id = launch(client, db, brand, monkeypatch, max_opt_out_rate=0.2, min_sent=4)
    scope = Scope.workspace(brand.actor.workspace_id)
    with db.transaction(scope) as s:
        assert check(s, campaign_id, 180, snapshot=True) is None
        addresses = list(s.scalars(select(Message.address).where(Message.status == "sent")))
        suppress_addresses(s, [("sms", a, "replied R") for a in addresses[:2]], source="reply")
        why = check(s, campaign_id, 180, snapshot=True)  # the checkpoint was taken: kept as it was
    assert why is not None and "opt-out rate 50.00% is above 20.00%" in why
    shown = client.get(f"/api/v1/campaigns/{campaign_id}/checkpoints", headers=brand.actor.bearer).json()
    assert [c["hours"] for c in shown] == [3]
    assert shown[0]["metrics"]["sent"] == 4 and shown[0]["metrics"]["opt_outs"] == 0
    assert (shown[0]["metrics"]["converted"], shown[0]["metrics"]["revenue_fen"]) == (0, 0)


def test_a_checkpoint_keeps_the_orders_earned_by_then(
    client: TestClient,
    db: Database,
    brand: Brand,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign_id = launch(client, db, brand, monkeypatch)
    scope = Scope.workspace(brand.actor.workspace_id)
    with db.transaction(scope) as s:
        sent = {m.profile_id: m.sent_at for m in s.scalars(select(Message).where(Message.status == "sent"))}
        person, at = sorted(sent.items())[0]
        [identity] = s.scalars(select(Identity.id).where(Identity.profile_id == person, Identity.kind == "phone"))
        order(s, identity, 1, at + timedelta(hours=1), 19_900)
        assert check(s, campaign_id, 180, snapshot=True) is None
        order(s, identity, 2, at + timedelta(hours=4), 5_000)  # after the 3-hour checkpoint was taken
        assert check(s, campaign_id, 360, snapshot=True) is None
    shown = client.get(f"/api/v1/campaigns/{campaign_id}/checkpoints", headers=brand.actor.bearer).json()
    earned = [
        (c["hours"], c["metrics"]["converted"], c["metrics"]["orders"], c["metrics"]["revenue_fen"]) for c in shown
    ]
    assert earned == [(3, 1, 1, 19_900), (6, 1, 2, 24_900)]


def test_guards_are_checked_for_their_shape(client: TestClient, brand: Brand) -> None:  # noqa: F811
    draft = CampaignDraft("x", None, (VariantDraft("A", "t", 100),), guards={"min_delivery_rate": 1.5, "speed": 1})
    assert {p.where for p in shape_problems(draft)} == {"guards.min_delivery_rate", "guards"}
    refused = client.post(
        "/api/v1/campaigns",
        json={"name": "x", "variants": [{"key": "A", "template_id": "t", "share": 100}], "guards": {"min_sent": -1}},
        headers=brand.actor.bearer,
    )
    assert refused.status_code == 422
