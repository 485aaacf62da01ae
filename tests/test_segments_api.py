"""Segments through the API: rules refused with the place of the problem (unknown names, empty
groups, a segment containing itself); a live preview; dynamic segments kept current by refreshes
with entered / exited events and daily sizes; static segments given their people or frozen;
members masked by role; overlap; a segment other rules use cannot be deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.accounts.contracts import Role
from siyu.analytics import preview as previews
from siyu.analytics.config import SEGMENTS_TASK
from siyu.analytics.facade import install_default_schedule
from siyu.ingest.tables import Event
from siyu.jobs.contracts import JobSpec
from siyu.jobs.queue import enqueue
from siyu.jobs.worker import Worker
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import Actor, login, make_actor
from tests.test_tags_api import identify, profile_of

SH = {"type": "trait", "key": "city", "value_type": "string", "op": "contains", "value": "上海"}
VIEWED_S1 = {"type": "event", "event": "Product Viewed", "where": [{"key": "sku", "op": "eq", "value": "S1"}]}


def track(client: TestClient, a: Actor, user: str, event: str, properties: dict[str, Any]) -> None:
    body = {"userId": user, "event": event, "properties": properties}
    response = client.post("/v1/track", json=body, auth=(a.ingest_key, ""))
    assert response.status_code == 200, response.text


def consent(
    client: TestClient,
    a: Actor,
    value: str,
    status: str,
    at: str,
    kind: str = "phone",
    channel: str = "sms",
    purpose: str = "marketing",
) -> None:
    record = {
        "address": {"kind": kind, "value": value},
        "channel": channel,
        "purpose": purpose,
        "status": status,
        "at": at,
        "source": "landing page",
        "proof": {"text_version": "v1"},
    }
    response = client.post("/api/v1/consents", json={"records": [record]}, headers=a.bearer)
    assert response.status_code == 201, response.text


def refresh(client: TestClient, db: Database, a: Actor, path: str = "/api/v1/segments/refresh") -> dict[str, Any]:
    queued = client.post(path, headers=a.bearer)
    assert queued.status_code == 202, queued.text
    Worker(db, lease_seconds=60).run_until_idle()
    done = client.get(f"/api/v1/analytics/runs/{queued.json()['id']}", headers=a.bearer).json()
    assert done["status"] == "done", done["error"]
    return dict(done)


def members(client: TestClient, a: Actor, segment_id: str) -> set[str]:
    page = client.get(f"/api/v1/segments/{segment_id}/members", params={"limit": 500}, headers=a.bearer).json()
    return {m["profile_id"] for m in page["items"]}


def segment_events(db: Database, a: Actor) -> list[tuple[str, str, str]]:
    with db.read(Scope.workspace(a.workspace_id)) as s:
        rows = s.scalars(select(Event).where(Event.event.in_(["Segment Entered", "Segment Exited"])))
        return sorted((r.event, r.properties["segment"], r.identity_id or "") for r in rows)


def create(client: TestClient, a: Actor, name: str, rule: dict[str, Any] | None = None, **more: Any) -> Any:
    body = {"name": name, "rule": rule, **more}
    return client.post("/api/v1/segments", json=body, headers=a.bearer)


def test_segments_from_rule_to_members(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    identify(client, a, "u1", {"phone": "13900000001", "city": "上海", "name": "张三"})
    identify(client, a, "u2", {"phone": "13900000002", "city": "北京"})
    identify(client, a, "u3", {"phone": "13900000003", "city": "杭州"})
    identify(client, a, "u4", {"phone": "13900000004"})
    track(client, a, "u1", "Product Viewed", {"sku": "S1", "price": 199})
    track(client, a, "u2", "Product Viewed", {"sku": "S2"})
    track(client, a, "u3", "Product Viewed", {"sku": "S1"})
    group = client.post("/v1/group", json={"userId": "u3", "groupId": "vip-1"}, auth=(a.ingest_key, ""))
    assert group.status_code == 200
    consent(client, a, "13900000001", "granted", "2026-01-01T00:00:00+08:00")
    consent(client, a, "13900000002", "granted", "2026-01-01T00:00:00+08:00")
    consent(client, a, "13900000002", "withdrawn", "2026-02-01T00:00:00+08:00")
    p1, p2, p3, p4 = (profile_of(client, a, f"1390000000{i}") for i in (1, 2, 3, 4))

    # Nothing to count before the first run.
    early = client.post("/api/v1/segments/preview", json={"rule": SH}, headers=a.bearer)
    assert early.status_code == 409 and "run the batch" in early.json()["message"]
    # A refresh of segments before any full run is a full run.
    assert refresh(client, db, a)["scope"] == "full"

    # Malformed rules fail closed with the place of the problem, and are never stored.
    refused = create(client, a, "x", {"type": "and", "conditions": [SH, {"type": "event", "event": "Viewd"}]})
    assert refused.status_code == 422 and refused.json()["details"]["problems"][0]["path"] == "conditions.1"
    refused = create(client, a, "x", {"type": "or", "conditions": []})
    assert refused.status_code == 422 and refused.json()["details"]["problems"][0]["path"] == "conditions"
    refused = create(client, a, "x", {"type": "community_group", "groups": ["vip-9"]})
    assert "vip-9" in refused.json()["message"]
    refused = create(client, a, "x", {"type": "segment", "segment_id": "sg_nope"})
    assert "unknown segment" in refused.json()["message"]
    assert create(client, a, "x", SH, kind="static").status_code == 422
    assert client.get("/api/v1/segments", headers=a.bearer).json() == []

    # The live preview: count, of everyone, and a sample masked for roles without personal data.
    preview = client.post(
        "/api/v1/segments/preview", json={"rule": {"type": "reachable", "channel": "sms"}}, headers=a.bearer
    )
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["people"], body["everyone"], [s["profile_id"] for s in body["sample"]]) == (1, 4, [p1])
    assert body["sample"][0]["display_name"] == "张三"
    viewer = make_actor(db, "acme", role=Role.ANALYST)
    csrf = login(client, viewer.email)
    masked = client.post(
        "/api/v1/segments/preview",
        json={"rule": {"type": "reachable", "channel": "sms"}},
        headers={"X-CSRF-Token": csrf},
    ).json()
    assert masked["sample"][0]["display_name"] != "张三" and masked["sample"][0]["display_name"].startswith("张")
    client.cookies.clear()
    grouped = {"type": "community_group", "groups": ["vip-1"]}
    assert client.post("/api/v1/segments/preview", json={"rule": grouped}, headers=a.bearer).json()["people"] == 1
    # As the process ends, the preview engines stop warming (a thread cut off inside the engine
    # would abort the process); a later preview builds its engine anew.
    warmed = list(previews._ENGINES.values())
    assert warmed and all(e.warmer is not None for e in warmed)
    previews._stop_warming()
    assert all(e.codes.closed and e.warmer is not None and not e.warmer.is_alive() for e in warmed)
    assert not previews._ENGINES

    # A dynamic segment, refreshed: members, entered events, a size for the day.
    wanted = create(client, a, "上海看过S1", {"type": "and", "conditions": [SH, VIEWED_S1]})
    assert wanted.status_code == 201, wanted.text
    seg = wanted.json()
    assert (seg["kind"], seg["people"]) == ("dynamic", 0)
    done = refresh(client, db, a)
    assert done["scope"] == "segments" and [s["name"] for s in done["steps"]] == ["transfer", "segments", "write"]
    assert members(client, a, seg["id"]) == {p1}
    assert client.get(f"/api/v1/segments/{seg['id']}", headers=a.bearer).json()["people"] == 1
    assert [e[:2] for e in segment_events(db, a)] == [("Segment Entered", "上海看过S1")]

    # People change: one enters, one leaves; a refresh with no change adds nothing.
    identify(client, a, "u3", {"city": "上海浦东"})
    identify(client, a, "u1", {"city": "北京"})
    refresh(client, db, a)
    assert members(client, a, seg["id"]) == {p3}
    assert [e[:2] for e in segment_events(db, a)] == [
        ("Segment Entered", "上海看过S1"),
        ("Segment Entered", "上海看过S1"),
        ("Segment Exited", "上海看过S1"),
    ]
    refresh(client, db, a)
    assert len(segment_events(db, a)) == 3
    sizes = client.get(f"/api/v1/segments/{seg['id']}/sizes", headers=a.bearer).json()
    assert [(s["people"], s["entered"], s["exited"]) for s in sizes] == [(1, 2, 1)]

    # Segments of segments, with cycles refused; the one used cannot be deleted.
    outer = create(
        client, a, "非上海看过S1", {"type": "not", "condition": {"type": "segment", "segment_id": seg["id"]}}
    )
    assert outer.status_code == 201, outer.text
    cycle = client.put(
        f"/api/v1/segments/{seg['id']}",
        json={"name": seg["name"], "rule": {"type": "segment", "segment_id": outer.json()["id"]}},
        headers=a.bearer,
    )
    assert cycle.status_code == 422 and "its own segment" in cycle.json()["message"]
    assert client.delete(f"/api/v1/segments/{seg['id']}", headers=a.bearer).status_code == 409
    everyone = create(client, a, "全体抽样", {"type": "bucket", "seed": "all", "from": 0, "to": 10_000})
    refresh(client, db, a)
    assert members(client, a, outer.json()["id"]) == {p1, p2, p4}
    assert members(client, a, everyone.json()["id"]) == {p1, p2, p3, p4}

    # Static segments: given their people (each must exist), or frozen from another.
    unknown = create(client, a, "名单", kind="static", profile_ids=[p2, "pf_nobody"])
    assert unknown.status_code == 422 and unknown.json()["details"]["unknown_profiles"] == ["pf_nobody"]
    listed = create(client, a, "名单", kind="static", profile_ids=[p2, p4, p2])
    assert listed.status_code == 201 and listed.json()["people"] == 2
    frozen = client.post(f"/api/v1/segments/{outer.json()['id']}/freeze", json={"name": "快照"}, headers=a.bearer)
    assert frozen.status_code == 201 and frozen.json()["frozen_from"] == outer.json()["id"]
    assert members(client, a, frozen.json()["id"]) == {p1, p2, p4}
    refresh(client, db, a)  # a static segment keeps its people
    assert members(client, a, listed.json()["id"]) == {p2, p4}
    overlap = client.get(
        "/api/v1/segments/overlap", params={"a": listed.json()["id"], "b": frozen.json()["id"]}, headers=a.bearer
    ).json()
    assert overlap == {"a": 2, "b": 3, "both": 2}

    # Another workspace sees none of it.
    other = make_actor(db, "other")
    assert client.get(f"/api/v1/segments/{seg['id']}", headers=other.bearer).status_code == 404
    assert client.get("/api/v1/segments", headers=other.bearer).json() == []
    pair = {"a": listed.json()["id"], "b": frozen.json()["id"]}
    assert client.get("/api/v1/segments/overlap", params=pair, headers=other.bearer).status_code == 404


def test_segments_refresh_on_their_own_schedule(client: TestClient, db: Database, tmp_path: Path) -> None:
    a = make_actor(db, "acme")
    assert client.get("/api/v1/segments/schedule", headers=a.bearer).json()["cron"] is None  # acme made by hand
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        install_default_schedule(s, "Asia/Shanghai", tmp_path)
    assert client.get("/api/v1/segments/schedule", headers=a.bearer).json()["cron"] == "15 * * * *"
    # A firing queues a refresh of segments (here the first run, so a full one) unless one is on its way.
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        enqueue(s, JobSpec(task=SEGMENTS_TASK, payload={"data_dir": str(tmp_path)}, workspace_id=a.workspace_id))
        enqueue(s, JobSpec(task=SEGMENTS_TASK, payload={"data_dir": str(tmp_path)}, workspace_id=a.workspace_id))
    Worker(db, lease_seconds=60).run_until_idle()
    runs = client.get("/api/v1/analytics/runs", headers=a.bearer).json()
    assert [(r["trigger"], r["status"]) for r in runs] == [("schedule", "done")]
    changed = client.put("/api/v1/segments/schedule", json={"cron": "*/30 * * * *"}, headers=a.bearer)
    assert changed.status_code == 200 and changed.json()["cron"] == "*/30 * * * *"
    assert changed.json()["next_run_at"] is not None
    bad = client.put("/api/v1/segments/schedule", json={"cron": "every hour"}, headers=a.bearer)
    assert bad.status_code == 422
    off = client.put("/api/v1/segments/schedule", json={"cron": None}, headers=a.bearer)
    assert off.json() == {"cron": None, "next_run_at": None}
