"""Tags through the API: the library with categories; manual tags on people and by file, every
row accounted for; rule tags refused with the place of the problem and otherwise kept current
by the batch run; computed tags with values; history, coverage, events; merges carry tags."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.accounts.contracts import Role
from siyu.identity.tables import Identity
from siyu.ingest.tables import Event
from siyu.jobs.worker import Worker
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import Actor, login, make_actor
from tests.test_analytics_runs import buy


def identify(client: TestClient, a: Actor, user: str, traits: dict[str, Any]) -> None:
    auth = (a.ingest_key, "")
    response = client.post("/v1/identify", json={"userId": user, "traits": traits}, auth=auth)
    assert response.status_code == 200, response.text


def track(client: TestClient, a: Actor, user: str, event: str) -> None:
    response = client.post("/v1/track", json={"userId": user, "event": event}, auth=(a.ingest_key, ""))
    assert response.status_code == 200, response.text


def profile_of(client: TestClient, a: Actor, phone: str) -> str:
    found = client.get("/api/v1/profiles", params={"q": phone}, headers=a.bearer).json()["items"]
    assert len(found) == 1, found
    return str(found[0]["id"])


def run(client: TestClient, db: Database, a: Actor) -> dict[str, Any]:
    queued = client.post("/api/v1/analytics/runs", headers=a.bearer)
    assert queued.status_code == 202, queued.text
    Worker(db, lease_seconds=60).run_until_idle()
    done = client.get(f"/api/v1/analytics/runs/{queued.json()['id']}", headers=a.bearer).json()
    assert done["status"] == "done", done["error"]
    return {s["name"]: s for s in done["steps"]}


def holders(client: TestClient, a: Actor, tag_id: str) -> dict[str, str]:
    page = client.get(f"/api/v1/tags/{tag_id}/history", params={"limit": 200}, headers=a.bearer).json()
    have: dict[str, str] = {}
    for change in reversed(page["items"]):
        if change["change"] == "removed":
            have.pop(change["profile_id"], None)
        else:
            have[change["profile_id"]] = change["value"]
    return have


def tag_events(db: Database, a: Actor) -> list[tuple[str, str]]:
    with db.read(Scope.workspace(a.workspace_id)) as s:
        rows = s.scalars(select(Event).where(Event.event.in_(["Tag Added", "Tag Removed", "Tag Value Changed"])))
        return sorted((r.event, r.properties["tag"]) for r in rows)


def test_the_tag_library_manual_rule_and_computed_tags(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    identify(client, a, "u1", {"phone": "13900000001", "city": "上海", "vip": True})
    identify(client, a, "u2", {"phone": "13900000002", "city": "北京"})
    identify(client, a, "u3", {"phone": "13900000003", "city": "上海浦东"})
    track(client, a, "u1", "Coupon Used")
    track(client, a, "u1", "Coupon Used")
    track(client, a, "u2", "Coupon Used")
    buy(db, a.workspace_id, "jd-buyer", "J1", 3, 50_000)
    p1, p2, p3 = (profile_of(client, a, f"1390000000{i}") for i in (1, 2, 3))

    category = client.post("/api/v1/tags/categories", json={"name": "营销"}, headers=a.bearer)
    assert category.status_code == 201, category.text
    child = client.post(
        "/api/v1/tags/categories", json={"name": "活动", "parent_id": category.json()["id"]}, headers=a.bearer
    ).json()
    tree = client.get("/api/v1/tags/categories", headers=a.bearer).json()
    assert tree[0]["name"] == "营销" and tree[0]["children"][0]["id"] == child["id"]

    # Manual: one call for some people, then a file of phones.
    manual = client.post(
        "/api/v1/tags",
        json={"name": "高潜", "kind": "manual", "owner": "运营部", "category_id": child["id"]},
        headers=a.bearer,
    ).json()
    put = client.post(f"/api/v1/tags/{manual['id']}/people", json={"profile_ids": [p1, p1]}, headers=a.bearer)
    assert put.json() == {"changed": 1, "unchanged": 0}
    unknown = client.post(f"/api/v1/tags/{manual['id']}/people", json={"profile_ids": ["pf_nobody"]}, headers=a.bearer)
    assert unknown.status_code == 422 and unknown.json()["details"]["unknown_profiles"] == ["pf_nobody"]
    csv = "手机号\n13900000001\n13900000002\n13900000009\nnot-a-phone\n\t\n"
    filed = client.post(
        f"/api/v1/tags/{manual['id']}/file",
        files={"file": ("people.csv", csv.encode(), "text/csv")},
        data={"kind": "phone"},
        headers=a.bearer,
    )
    assert filed.status_code == 200, filed.text
    body = filed.json()
    assert (body["total"], body["tagged"], body["already"], body["rejected_count"]) == (4, 1, 1, 2)
    reasons = {r["row"]: r["reason"] for r in body["rejected"]}
    assert reasons[4] == "no one has this identifier" and 5 in reasons
    assert body["total"] == body["tagged"] + body["already"] + body["rejected_count"]

    # Rule tags: refused with the place of the problem, never stored.
    def rule_tag(name: str, rule: dict[str, Any]) -> Any:
        return client.post("/api/v1/tags", json={"name": name, "kind": "rule", "rule": rule}, headers=a.bearer)

    city = {"type": "trait", "key": "city", "value_type": "string", "op": "contains", "value": "上海"}
    refused = rule_tag("x", {"type": "and", "conditions": [city, {"type": "event", "event": "Coupon Usd"}]})
    assert refused.status_code == 422
    assert refused.json()["details"]["problems"][0]["path"] == "conditions.1"
    refused = rule_tag("x", {"type": "and", "conditions": []})
    assert refused.status_code == 422 and refused.json()["details"]["problems"][0]["path"] == "conditions"
    refused = rule_tag("x", {**city, "value_type": "number", "op": "gt", "value": 3})
    assert "holds string values" in refused.json()["message"]
    assert [t["name"] for t in client.get("/api/v1/tags", headers=a.bearer).json()] == ["高潜"]

    shanghai = rule_tag("上海客户", city).json()
    couponers = rule_tag(
        "上海券客",
        {
            "type": "and",
            "conditions": [
                {"type": "tag", "tag_id": shanghai["id"]},
                {"type": "event", "event": "Coupon Used", "count": 2, "window": {"days": 30}},
            ],
        },
    )
    assert couponers.status_code == 201, couponers.text
    not_manual = rule_tag("非高潜", {"type": "not", "condition": {"type": "tag", "tag_id": manual["id"]}}).json()
    loop = client.put(
        f"/api/v1/tags/{shanghai['id']}",
        json={"name": "上海客户", "kind": "rule", "rule": {"type": "tag", "tag_id": couponers.json()["id"]}},
        headers=a.bearer,
    )
    assert loop.status_code == 422 and "its own tag" in loop.json()["message"]
    in_use = client.delete(f"/api/v1/tags/{shanghai['id']}", headers=a.bearer)
    assert in_use.status_code == 409 and in_use.json()["details"]["used_by"] == ["上海券客"]
    groups = client.post(
        "/api/v1/tags",
        json={"name": "RFM 分层", "kind": "computed", "computed": {"source": "rfm_group"}},
        headers=a.bearer,
    ).json()
    stage = client.post(
        "/api/v1/tags",
        json={"name": "阶段", "kind": "computed", "computed": {"source": "lifecycle_stage"}},
        headers=a.bearer,
    ).json()
    bad = client.post(
        "/api/v1/tags", json={"name": "y", "kind": "computed", "computed": {"source": "zodiac"}}, headers=a.bearer
    )
    assert bad.status_code == 422 and bad.json()["details"] == {"path": "computed.source"}
    wrong_kind = client.post(f"/api/v1/tags/{shanghai['id']}/people", json={"profile_ids": [p1]}, headers=a.bearer)
    assert wrong_kind.status_code == 422 and "batch run decides" in wrong_kind.json()["message"]

    steps = run(client, db, a)
    assert steps["tags"]["tags"] == 5
    assert holders(client, a, shanghai["id"]) == {p1: "", p3: ""}
    assert holders(client, a, couponers.json()["id"]) == {p1: ""}
    everyone_else = holders(client, a, not_manual["id"])
    assert p3 in everyone_else and p1 not in everyone_else and p2 not in everyone_else
    valued = holders(client, a, groups["id"])
    [(buyer, group)] = valued.items()  # the one buyer, with the group the run gave them
    assert group == client.get(f"/api/v1/profiles/{buyer}", headers=a.bearer).json()["analytics"]["rfm"]["rfm_group"]
    assert ("Tag Added", "上海客户") in tag_events(db, a)
    listed = {t["name"]: t for t in client.get("/api/v1/tags", headers=a.bearer).json()}
    assert listed["上海客户"]["people"] == 2 and listed["上海客户"]["evaluated_at"] is not None
    coverage = client.get(f"/api/v1/tags/{shanghai['id']}/coverage", headers=a.bearer).json()
    assert coverage[-1]["people"] == 2 and coverage[-1]["added"] == 2 and coverage[-1]["of_everyone"] >= 4
    person = client.get(f"/api/v1/profiles/{p1}", headers=a.bearer).json()
    assert {t["name"] for t in person["tags"]} == {"高潜", "上海客户", "上海券客", "阶段"}

    buyer_stage = holders(client, a, stage["id"])
    assert buyer_stage[buyer] == "new" and buyer_stage[p1] == "prospect"

    # Traits change: the next run takes the tag off, with an event; a second order moves the
    # buyer's stage, which changes the computed tag's value; nothing else moves.
    identify(client, a, "u3", {"city": "杭州"})
    buy(db, a.workspace_id, "jd-buyer", "J2", 1, 20_000)
    steps = run(client, db, a)
    assert steps["write"]["tags_removed"] == 1 and steps["write"]["tags_added"] == 0
    assert steps["write"]["tags_revalued"] >= 1
    assert holders(client, a, stage["id"])[buyer] == "active"
    assert ("Tag Value Changed", "阶段") in tag_events(db, a)
    assert holders(client, a, shanghai["id"]) == {p1: ""}
    assert ("Tag Removed", "上海客户") in tag_events(db, a)
    removed = client.post(f"/api/v1/tags/{manual['id']}/people/remove", json={"profile_ids": [p2]}, headers=a.bearer)
    assert removed.json() == {"changed": 1, "unchanged": 0}


def test_rule_tags_and_segments_count_purchases_in_their_windows(client: TestClient, db: Database) -> None:
    """A run's tags and segments count each person's purchases in the last so many days: at most,
    at least, none, or their total."""
    a = make_actor(db, "acme")
    buy(db, a.workspace_id, "twice", "1", 3, 60_000)
    buy(db, a.workspace_id, "twice", "2", 20, 50_000)
    buy(db, a.workspace_id, "once", "3", 29, 200_000)
    buy(db, a.workspace_id, "long-ago", "4", 400, 900_000)
    buy(db, a.workspace_id, "long-ago", "5", 31, 1_000)

    def tag(name: str, rule: dict[str, Any]) -> str:
        made = client.post("/api/v1/tags", json={"name": name, "kind": "rule", "rule": rule}, headers=a.bearer)
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    month = {"days": 30}
    twice = tag("月内两单", {"type": "orders", "value": 2, "window": month})
    none = tag("月内无单", {"type": "orders", "op": "eq", "value": 0, "window": month})
    spent = tag("年内满千", {"type": "orders", "measure": "total_fen", "value": 100_000, "window": {"days": 365}})
    rule = {"type": "orders", "op": "lte", "value": 1, "window": month}
    made = client.post("/api/v1/segments", json={"name": "月内至多一单", "rule": rule}, headers=a.bearer)
    assert made.status_code == 201, made.text
    steps = run(client, db, a)
    assert steps["rfm"]["order_aggregates"] == 4  # totalled with RFM's, not one grouping each
    buyer = {b: profile_of_buyer(db, a, b) for b in ("twice", "once", "long-ago")}
    assert set(holders(client, a, twice)) == {buyer["twice"]}
    assert set(holders(client, a, none)) == {buyer["long-ago"]}
    assert set(holders(client, a, spent)) == {buyer["twice"], buyer["once"]}
    members = client.get(f"/api/v1/segments/{made.json()['id']}/members", headers=a.bearer).json()["items"]
    assert {m["profile_id"] for m in members} == {buyer["once"], buyer["long-ago"]}


def profile_of_buyer(db: Database, a: Actor, buyer: str) -> str:
    with db.read(Scope.workspace(a.workspace_id)) as s:
        found = s.scalar(select(Identity.profile_id).where(Identity.value == buyer))
    assert found is not None
    return str(found)


def test_a_merge_carries_the_merged_persons_tags(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    auth = (a.ingest_key, "")
    client.post("/v1/identify", json={"userId": "mum", "traits": {"phone": "13700002222"}}, auth=auth)
    client.post("/v1/identify", json={"anonymousId": "device-9", "traits": {"email": "kid@example.com"}}, auth=auth)
    kid = profile_of(client, a, "kid@example.com")
    mum = profile_of(client, a, "13700002222")
    tag = client.post("/api/v1/tags", json={"name": "到店", "kind": "manual"}, headers=a.bearer).json()
    assert (
        client.post(f"/api/v1/tags/{tag['id']}/people", json={"profile_ids": [kid]}, headers=a.bearer).status_code
        == 200
    )
    client.post("/v1/identify", json={"anonymousId": "device-9", "userId": "mum"}, auth=auth)
    survivor = profile_of(client, a, "kid@example.com")
    assert survivor in (mum, kid)
    person = client.get(f"/api/v1/profiles/{survivor}", headers=a.bearer).json()
    assert [t["name"] for t in person["tags"]] == ["到店"]


def test_an_analyst_reads_tags_but_does_not_change_them(client: TestClient, db: Database) -> None:
    owner = make_actor(db, "acme")
    client.post("/api/v1/tags", json={"name": "高潜", "kind": "manual"}, headers=owner.bearer)
    analyst = make_actor(db, "acme", Role.ANALYST)
    csrf = login(client, analyst.email)
    assert [t["name"] for t in client.get("/api/v1/tags").json()] == ["高潜"]
    created = client.post("/api/v1/tags", json={"name": "x", "kind": "manual"}, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 403
