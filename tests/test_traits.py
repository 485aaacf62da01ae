"""Progressive profiles: traits with provenance, precedence, history, and across merges/splits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from siyu.profiles.traits import Observed, Precedence, TraitRule, fold
from siyu.storage.session import Database
from tests.conftest import make_actor
from tests.test_segment_api import basic

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_fold_by_precedence() -> None:
    obs = [
        Observed("city", "杭州", "segment:web", T0, "i1"),
        Observed("city", "上海", "segment:web", T0 + timedelta(days=1), "i2"),
        Observed("first_channel", "douyin", "segment:web", T0 + timedelta(days=2), "i1"),
        Observed("first_channel", "tmall", "segment:web", T0, "i2"),
        Observed("name", "小李", "segment:web", T0 + timedelta(days=5), "i1"),
        Observed("name", "李娜", "member", T0, "i2"),
    ]
    values, sources = fold(obs)
    assert values == {"city": "上海", "first_channel": "tmall", "name": "李娜"}
    assert sources["name"]["source"] == "member" and sources["city"]["identity_id"] == "i2"
    custom = fold(obs, {"city": TraitRule(Precedence.FIRST_SEEN)})[0]
    assert custom["city"] == "杭州"


def _profile(client: TestClient, bearer: dict[str, str], q: str) -> dict:  # type: ignore[type-arg]
    [p] = client.get("/api/v1/profiles", params={"q": q}, headers=bearer).json()["items"]
    return client.get(f"/api/v1/profiles/{p['id']}", headers=bearer).json()


def test_identify_traits_build_the_profile_and_late_data_does_not_win(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    h = basic(a.ingest_key)
    client.post(
        "/v1/identify",
        json={
            "userId": "u1",
            "traits": {"city": "上海", "name": "李娜", "vip": True},
            "timestamp": "2026-05-01T10:00:00Z",
        },
        headers=h,
    )
    client.post(
        "/v1/identify",
        json={"userId": "u1", "traits": {"city": "杭州"}, "timestamp": "2026-03-01T10:00:00Z"},
        headers=h,
    )  # older, arrives late
    client.post(
        "/v1/track",
        json={
            "userId": "u1",
            "event": "x",
            "context": {"traits": {"level": "gold"}},
            "timestamp": "2026-06-01T10:00:00Z",
        },
        headers=h,
    )
    profile = _profile(client, a.bearer, "u1")["profile"]
    assert profile["display_name"] == "李娜"
    assert profile["traits"] == {"city": "上海", "name": "李娜", "vip": True, "level": "gold"}


def test_traits_follow_identifiers_through_merge_and_split(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    h = basic(a.ingest_key)
    client.post(
        "/v1/identify",
        json={"userId": "mum", "traits": {"phone": "13900000001", "city": "上海"}, "timestamp": "2026-05-01T10:00:00Z"},
        headers=h,
    )
    client.post(
        "/v1/identify",
        json={
            "anonymousId": "son-phone",
            "traits": {"phone": "13900000001", "city": "北京", "game": "王者荣耀"},
            "timestamp": "2026-06-01T10:00:00Z",
        },
        headers=h,
    )
    merged = _profile(client, a.bearer, "mum")
    assert merged["profile"]["traits"]["city"] == "北京" and merged["profile"]["traits"]["game"] == "王者荣耀"
    son = next(i["id"] for i in merged["identities"] if i["value"] == "son-phone")
    r = client.post(f"/api/v1/profiles/{merged['profile']['id']}/split", json={"identity_ids": [son]}, headers=a.bearer)
    assert r.status_code == 200
    mum = _profile(client, a.bearer, "mum")["profile"]["traits"]
    son_traits = _profile(client, a.bearer, "son-phone")["profile"]["traits"]
    assert mum == {"phone": "13900000001", "city": "上海"}
    assert son_traits == {"phone": "13900000001", "city": "北京", "game": "王者荣耀"}
