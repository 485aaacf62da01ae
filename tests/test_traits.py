"""Progressive profiles: traits with provenance, precedence, history, and across merges/splits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.profiles.tables import Profile, TraitObservation
from siyu.profiles.traits import Observed, Precedence, TraitRule, fold, refold
from siyu.storage.scoping import Scope
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


def test_a_repeated_report_is_not_a_new_observation_and_refold_agrees(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    h = basic(a.ingest_key)

    def identify(who: dict[str, str], traits: dict[str, object], day: int) -> None:
        body = {**who, "traits": traits, "timestamp": f"2026-05-{day:02d}T10:00:00Z"}
        assert client.post("/v1/identify", json=body, headers=h).status_code == 200

    for day in (1, 2, 3):  # an app sends the same traits with every call
        identify({"userId": "u1"}, {"city": "上海", "vip": True}, day)
    identify({"userId": "u1", "anonymousId": "web"}, {"city": "上海", "vip": 1}, 4)  # 1 is not true: new
    identify({"anonymousId": "web"}, {"city": "上海"}, 5)  # another of the person's identifiers says it
    identify({"userId": "u1"}, {"city": "杭州"}, 6)  # a change
    identify({"userId": "u1"}, {"city": "上海"}, 7)  # and back: a new report again
    with db.read(Scope.workspace(a.workspace_id)) as s:
        rows = s.execute(select(TraitObservation.key, TraitObservation.observed_at)).all()
        assert sorted((k, at.day) for k, at in rows) == [
            ("city", 1),
            ("city", 5),
            ("city", 6),
            ("city", 7),
            ("vip", 1),
            ("vip", 4),
        ]
    profile = _profile(client, a.bearer, "u1")["profile"]
    assert profile["traits"] == {"city": "上海", "vip": 1}
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        stored = s.get(Profile, profile["id"])
        assert stored is not None
        before = (dict(stored.traits), dict(stored.trait_sources))
        assert before[1]["city"]["observed_at"].startswith("2026-05-07")
        refold(s, [profile["id"]])
        assert (stored.traits, stored.trait_sources) == before


EARLY, LATE = datetime(2020, 1, 1, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC)


def test_a_merge_folds_the_absorbed_profile_into_its_survivor(db: Database) -> None:
    from siyu.identity.tables import IdentityMerge
    from siyu.ingest.events import store_events
    from siyu.ingest.segment import parse_call

    actor = make_actor(db, "acme")
    scope = Scope.workspace(actor.workspace_id)

    def send(body: dict[str, object], at: datetime) -> None:
        with db.transaction(scope) as s:
            store_events(s, [parse_call({**body, "timestamp": at.isoformat()}, at)], at)

    send({"type": "identify", "userId": "u1", "traits": {"name": "王芳", "city": "杭州"}, "messageId": "m1"}, T0)
    send({"type": "identify", "anonymousId": "v1", "traits": {"plan": "gold"}, "messageId": "m2"}, T0)
    with db.transaction(scope) as s:
        before = {p.id: (p.first_seen_at, p.last_seen_at) for p in s.scalars(select(Profile))}
        older, newer = sorted(before)
        # Seen times as if the visitor had been around longer and more recently than the member.
        visitor = s.get(Profile, newer)
        assert visitor is not None
        visitor.first_seen_at, visitor.last_seen_at = EARLY, LATE
    send({"type": "identify", "userId": "u1", "anonymousId": "v1", "messageId": "m3"}, T0 + timedelta(hours=1))
    with db.read(scope) as s:
        [survivor] = s.scalars(select(Profile))
        assert survivor.id == older  # the oldest profile id survives
        assert survivor.traits == {"name": "王芳", "city": "杭州", "plan": "gold"}
        assert survivor.display_name == "王芳"
        assert (survivor.first_seen_at, survivor.last_seen_at) == (EARLY, LATE)
        merges = [(m.action, m.survivor_id, m.other_id) for m in s.scalars(select(IdentityMerge))]
    assert merges == [("merge", older, newer)]
