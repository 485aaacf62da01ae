"""Profiles through the API: find people by any identifier; the profile 360, masked by role."""

from __future__ import annotations

from fastapi.testclient import TestClient

from siyu.accounts.contracts import Role
from siyu.storage.session import Database
from tests.conftest import login, make_actor
from tests.test_segment_api import basic


def test_find_a_person_by_phone_and_see_their_360(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    h = basic(a.ingest_key)
    client.post("/v1/page", json={"anonymousId": "dev-1", "name": "首页"}, headers=h)
    client.post("/v1/track", json={"userId": "u-7", "event": "Signed In"}, headers=h)  # another device first
    client.post(
        "/v1/identify",
        json={"userId": "u-7", "anonymousId": "dev-1", "traits": {"phone": "13812345678", "email": "Li@QQ.com"}},
        headers=h,
    )
    client.post("/v1/track", json={"userId": "someone-else", "event": "x"}, headers=h)
    found = client.get("/api/v1/profiles", params={"q": "138 1234 5678"}, headers=a.bearer).json()["items"]
    assert len(found) == 1
    detail = client.get(f"/api/v1/profiles/{found[0]['id']}", headers=a.bearer).json()
    kinds = {(i["kind"], i["value"]) for i in detail["identities"]}
    assert kinds == {("user_id", "u-7"), ("anonymous_id", "dev-1"), ("phone", "+8613812345678"), ("email", "li@qq.com")}
    assert sorted(e["type"] for e in detail["events"]) == ["identify", "page", "track"]
    assert detail["masked"] is False
    assert [m["action"] for m in detail["merges"]] == ["merge"]  # the two devices became one person
    by_email = client.get("/api/v1/profiles", params={"q": "li@qq.com"}, headers=a.bearer).json()["items"]
    assert [p["id"] for p in by_email] == [found[0]["id"]]
    audit = client.get("/api/v1/audit", params={"action": "profile.view"}, headers=a.bearer).json()["items"]
    assert audit and audit[0]["target_id"] == found[0]["id"]

    viewer = make_actor(db, "acme", role=Role.VIEWER)
    login(client, viewer.email)
    masked = client.get(f"/api/v1/profiles/{found[0]['id']}").json()
    values = {i["kind"]: i["value"] for i in masked["identities"]}
    assert masked["masked"] is True and values["phone"] == "138****5678" and values["email"] == "l***@qq.com"
    assert client.get("/api/v1/profiles/pf_nope").status_code == 404


def test_operators_split_and_merge_people_and_it_is_audited(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    h = basic(a.ingest_key)
    # The son signed in on his own phone with the family's phone number: one profile, wrongly.
    client.post("/v1/identify", json={"userId": "mum", "traits": {"phone": "13900000001"}}, headers=h)
    client.post("/v1/identify", json={"anonymousId": "son-phone", "traits": {"phone": "13900000001"}}, headers=h)
    [person] = client.get("/api/v1/profiles", headers=a.bearer).json()["items"]
    detail = client.get(f"/api/v1/profiles/{person['id']}", headers=a.bearer).json()
    son = next(i["id"] for i in detail["identities"] if i["value"] == "son-phone")
    split = client.post(f"/api/v1/profiles/{person['id']}/split", json={"identity_ids": [son]}, headers=a.bearer)
    assert split.status_code == 200, split.text
    [new_id] = split.json()["new_profile_ids"]
    assert len(client.get("/api/v1/profiles", headers=a.bearer).json()["items"]) == 2
    new_identities = client.get(f"/api/v1/profiles/{new_id}", headers=a.bearer).json()["identities"]
    assert [i["value"] for i in new_identities] == ["son-phone"]
    # New data does not join them again; the son's own visits land on his profile.
    client.post("/v1/identify", json={"anonymousId": "son-phone", "traits": {"phone": "13900000001"}}, headers=h)
    client.post("/v1/track", json={"anonymousId": "son-phone", "event": "Product Added"}, headers=h)
    son_events = client.get(f"/api/v1/profiles/{new_id}", headers=a.bearer).json()["events"]
    # Events belong to who they were sent as: all of the son's device's events moved with it.
    assert "Product Added" in [e["event"] for e in son_events]
    assert {e["anonymous_id"] for e in son_events} == {"son-phone"}
    assert len(client.get("/api/v1/profiles", headers=a.bearer).json()["items"]) == 2
    merged = client.post(f"/api/v1/profiles/{person['id']}/merge", json={"other_profile_id": new_id}, headers=a.bearer)
    assert merged.status_code == 200
    assert len(client.get("/api/v1/profiles", headers=a.bearer).json()["items"]) == 1
    actions = [e["action"] for e in client.get("/api/v1/audit", headers=a.bearer).json()["items"]]
    assert "profile.split" in actions and "profile.merge" in actions
    bad = client.post(f"/api/v1/profiles/{person['id']}/split", json={"identity_ids": ["idn_nope"]}, headers=a.bearer)
    assert bad.status_code == 404


def test_merging_two_wechat_users_is_refused(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    h = basic(a.ingest_key)
    client.post(
        "/v1/identify", json={"anonymousId": "d1", "traits": {"unionid": "oUnAAAAAAAAAAAAAAAAAAAAA01"}}, headers=h
    )
    client.post(
        "/v1/identify", json={"anonymousId": "d2", "traits": {"unionid": "oUnAAAAAAAAAAAAAAAAAAAAA02"}}, headers=h
    )
    one, two = (p["id"] for p in client.get("/api/v1/profiles", headers=a.bearer).json()["items"])
    r = client.post(f"/api/v1/profiles/{one}/merge", json={"other_profile_id": two}, headers=a.bearer)
    assert r.status_code == 409 and "unionid" in r.json()["message"]
    assert len(client.get("/api/v1/profiles", headers=a.bearer).json()["items"]) == 2
    viewer = make_actor(db, "acme", role=Role.VIEWER)
    csrf = login(client, viewer.email)
    denied = client.post(
        f"/api/v1/profiles/{one}/merge", json={"other_profile_id": two}, headers={"X-CSRF-Token": csrf}
    )
    assert denied.status_code == 403
