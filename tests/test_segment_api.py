"""The Segment-compatible event API: auth as Segment does it, gzip, limits, idempotency, batches,
and the official Segment Python SDK pointed at a live siyu."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.api.app import create_app
from siyu.api.errors import install_error_handlers
from siyu.api.keycache import KeyCache
from siyu.api.routes import segment
from siyu.ingest.tables import Event
from siyu.ingest.writer import EventWriter
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import Actor, make_actor, settings_for
from tests.test_console_browser import _free_port


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def events_of(db: Database, actor: Actor) -> list[Event]:
    with db.transaction(Scope.workspace(actor.workspace_id)) as s:
        rows = list(s.scalars(select(Event).order_by(Event.timestamp)))
        for r in rows:
            s.expunge(r)
        return rows


def test_track_with_the_write_key_as_basic_username(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    body = {
        "userId": "u-1",
        "event": "Order Completed",
        "properties": {"revenue_fen": 19900},
        "messageId": "m-1",
        "timestamp": "2026-11-20T08:00:00+08:00",
        "context": {"ip": "1.2.3.4"},
    }
    r = client.post("/v1/track", json=body, headers=basic(a.ingest_key))
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "accepted": 1, "duplicates": 0, "rejected": []}
    [stored] = events_of(db, a)
    assert (stored.type, stored.event, stored.user_id) == ("track", "Order Completed", "u-1")
    assert stored.properties == {"revenue_fen": 19900}
    assert stored.timestamp == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def test_replayed_message_id_stores_nothing_new(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    body = {"anonymousId": "anon-1", "event": "Product Added", "messageId": "same"}
    assert client.post("/v1/track", json=body, headers=basic(a.ingest_key)).json()["duplicates"] == 0
    assert client.post("/v1/track", json=body, headers=basic(a.ingest_key)).json()["duplicates"] == 1
    batch = {"batch": [{**body, "type": "track"}, {**body, "type": "track"}]}
    assert client.post("/v1/batch", json=batch, headers=basic(a.ingest_key)).json()["duplicates"] == 2
    assert len(events_of(db, a)) == 1


@pytest.mark.parametrize("how", ["bearer", "body"])
def test_other_ways_to_pass_the_key(client: TestClient, db: Database, how: str) -> None:
    a = make_actor(db, "acme")
    body: dict[str, object] = {"userId": "u", "traits": {"email": "li@example.com"}}
    headers = {"Authorization": f"Bearer {a.ingest_key}"} if how == "bearer" else {}
    if how == "body":
        body["writeKey"] = a.ingest_key
    assert client.post("/v1/identify", json=body, headers=headers).status_code == 200
    assert events_of(db, a)[0].traits == {"email": "li@example.com"}


def test_unknown_or_revoked_key_is_401(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    body = {"userId": "u", "event": "x"}
    assert client.post("/v1/track", json=body, headers=basic("wk_nope")).status_code == 401
    assert client.post("/v1/track", json=body).status_code == 401
    # The key works (and this process remembers it) until it is revoked: then at once it does not.
    assert client.post("/v1/track", json=body | {"messageId": "before"}, headers=basic(a.ingest_key)).status_code == 200
    keys = client.get("/api/v1/keys", headers=a.bearer).json()
    ingest = next(k for k in keys if k["scope"] == "ingest")
    client.post(f"/api/v1/keys/{ingest['id']}/revoke", headers=a.bearer)
    assert client.post("/v1/track", json=body, headers=basic(a.ingest_key)).status_code == 401
    assert [e.message_id for e in events_of(db, a)] == ["before"]


def test_gzip_bodies(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    payload = {
        "batch": [
            {
                "type": "page",
                "anonymousId": "x",
                "name": "首页",
                "category": "商城",
                "properties": {"path": "/pages/index"},
            }
        ]
    }
    raw = gzip.compress(json.dumps(payload, ensure_ascii=False).encode())
    r = client.post(
        "/v1/batch",
        content=raw,
        headers={**basic(a.ingest_key), "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    [page] = events_of(db, a)
    assert page.event == "首页" and page.properties == {"category": "商城", "path": "/pages/index"}
    broken = client.post("/v1/batch", content=b"not gzip", headers={**basic(a.ingest_key), "Content-Encoding": "gzip"})
    assert broken.status_code == 400 and "gzip" in broken.json()["message"]


def test_size_limits_are_segments(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    big = {"userId": "u", "event": "x", "properties": {"blob": "x" * 33_000}}
    r = client.post("/v1/track", json=big, headers=basic(a.ingest_key))
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    in_batch = client.post(
        "/v1/batch",
        json={"batch": [{**big, "type": "track"}, {"type": "track", "userId": "u", "event": "ok"}]},
        headers=basic(a.ingest_key),
    )
    assert in_batch.status_code == 200
    assert in_batch.json()["rejected"] == [{"index": 0, "code": "payload_too_large", "message": "event exceeds 32 KB"}]
    huge = {"batch": [{"type": "track", "userId": "u", "event": "x", "properties": {"p": "y" * 30_000}}] * 18}
    assert client.post("/v1/batch", json=huge, headers=basic(a.ingest_key)).status_code == 413
    assert [e.event for e in events_of(db, a)] == ["ok"]


def test_a_streamed_body_over_the_limit_is_refused_while_reading(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is only known while reading
        yield b'{"userId": "u", "event": "x", "properties": {"p": "'
        for _ in range(40):
            yield b"y" * 1024
        yield b'"}}'

    r = client.post("/v1/track", content=chunks(), headers=basic(a.ingest_key))
    assert r.status_code == 413 and r.json()["details"] == {"limit_bytes": 32 * 1024}
    assert events_of(db, a) == []


def test_the_documented_routes_answer_as_the_gate_does(db: Database) -> None:
    """Without the gate in front, the OpenAPI-documented routes store and answer the same way."""
    a = make_actor(db, "acme")
    gated = create_app(settings_for(db), db)
    bare = FastAPI()
    bare.state.db, bare.state.key_cache, bare.state.event_writer = db, KeyCache(), EventWriter(db)
    install_error_handlers(bare)
    bare.include_router(segment.router)
    body = {"userId": "u-1", "event": "Viewed", "messageId": "m-1"}
    answers = []
    for app in (gated, bare):
        with TestClient(app) as c:
            answers.append(
                [
                    c.post("/v1/track", json=body, headers=basic(a.ingest_key)).json(),
                    c.post("/v1/identify", json={"userId": "u"}, headers=basic("nope")).json(),
                    c.post("/v1/batch", json={"batch": [{"type": "x"}]}, headers=basic(a.ingest_key)).json(),
                ]
            )
    bare.state.event_writer.stop()
    assert answers[0][0] == {"success": True, "accepted": 1, "duplicates": 0, "rejected": []}
    assert answers[1][0] == {"success": True, "accepted": 1, "duplicates": 1, "rejected": []}
    assert answers[0][1:] == answers[1][1:] and answers[0][1]["code"] == "invalid_credentials"
    assert len(events_of(db, a)) == 1


def test_the_short_paths_analytics_js_posts_to(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    for path, body in (
        ("/v1/t", {"anonymousId": "v", "event": "Viewed"}),
        ("/v1/p", {"anonymousId": "v", "name": "首页"}),
        ("/v1/i", {"userId": "u", "anonymousId": "v"}),
        ("/v1/b", {"batch": [{"type": "track", "userId": "u", "event": "Paid"}]}),
    ):
        r = client.post(path, json={**body, "writeKey": a.ingest_key})
        assert r.status_code == 200 and r.json()["accepted"] == 1, (path, r.text)
    assert [e.type for e in events_of(db, a)] == ["track", "page", "identify", "track"]


def test_browsers_on_any_origin_may_call(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    preflight = client.options(
        "/v1/track",
        headers={"Origin": "https://shop.example.cn", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    # As analytics.js sends it: text/plain (no preflight), the write key in the body.
    body = json.dumps({"writeKey": a.ingest_key, "anonymousId": "v-1", "event": "Viewed"})
    r = client.post(
        "/v1/track", content=body, headers={"Content-Type": "text/plain", "Origin": "https://shop.example.cn"}
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    refused = client.post("/v1/track", content=b"{}", headers={"Origin": "https://shop.example.cn"})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "*"
    assert client.options("/api/v1/workspaces").status_code != 204  # only the tracking calls


def test_invalid_input_is_400_naming_the_problem(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    h = {**basic(a.ingest_key), "Content-Type": "application/json"}
    bad_json = client.post("/v1/track", content=b'{"userId": "u", ', headers=h)
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["message"]
    no_event = client.post("/v1/track", json={"userId": "u"}, headers=basic(a.ingest_key))
    assert no_event.status_code == 400 and no_event.json()["message"] == "track needs event"
    bad_type = client.post("/v1/batch", json={"batch": [{"type": "purchase"}]}, headers=basic(a.ingest_key))
    assert bad_type.status_code == 400 and "type must be one of" in bad_type.json()["details"][0]["message"]
    bad_time = client.post(
        "/v1/track", json={"userId": "u", "event": "e", "timestamp": "yesterday"}, headers=basic(a.ingest_key)
    )
    assert bad_time.status_code == 400 and "timestamp" in bad_time.json()["message"]
    assert client.post("/v1/alias", json={"userId": "u"}, headers=basic(a.ingest_key)).status_code == 400
    assert events_of(db, a) == []


def test_event_without_identity_is_stored_as_anonymous(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    assert client.post("/v1/track", json={"event": "Link Clicked"}, headers=basic(a.ingest_key)).status_code == 200
    [e] = events_of(db, a)
    assert e.user_id is None and e.anonymous_id is None and e.event == "Link Clicked"


def test_client_clock_skew_is_corrected_with_sent_at(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    # The phone's clock is 1 hour fast: it sent the event 10 s after it happened.
    body = {
        "batch": [{"type": "track", "userId": "u", "event": "e", "originalTimestamp": "2030-01-01T10:00:00Z"}],
        "sentAt": "2030-01-01T10:00:10Z",
    }
    client.post("/v1/batch", json=body, headers=basic(a.ingest_key))
    [e] = events_of(db, a)
    assert abs((e.received_at - e.timestamp).total_seconds() - 10) < 1


def test_keys_only_write_their_own_workspace(client: TestClient, db: Database) -> None:
    a, b = make_actor(db, "acme"), make_actor(db, "beta")
    client.post("/v1/track", json={"userId": "u", "event": "e"}, headers=basic(a.ingest_key))
    assert len(events_of(db, a)) == 1 and events_of(db, b) == []


@pytest.fixture
def live(db: Database) -> Iterator[tuple[str, Actor]]:
    actor = make_actor(db, "sdk")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings_for(db), db), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", actor
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("compress", [False, True])
def test_the_official_segment_python_sdk_works_unmodified(
    live: tuple[str, Actor], db: Database, compress: bool
) -> None:
    from segment.analytics import Client

    host, actor = live
    errors: list[object] = []
    sdk = Client(
        actor.ingest_key,
        host=host,
        gzip=compress,
        sync_mode=True,
        max_retries=1,
        on_error=lambda e, batch: errors.append(e),
    )
    sdk.identify("u-42", {"name": "李娜", "email": "lina@example.com"}, anonymous_id="anon-9")
    sdk.track("u-42", "Order Completed", {"order_no": "3000001", "revenue_fen": 25800})
    sdk.page("u-42", category="商城", name="商品详情", properties={"path": "/pages/goods/detail"})
    sdk.screen("u-42", name="会员中心")
    sdk.group("u-42", "community-vip-1", {"name": "VIP 社群"})
    sdk.alias("anon-9", "u-42")
    sdk.flush()
    assert errors == []
    stored = events_of(db, actor)
    assert sorted(e.type for e in stored) == ["alias", "group", "identify", "page", "screen", "track"]
    by_type = {e.type: e for e in stored}
    assert by_type["identify"].anonymous_id == "anon-9" and by_type["identify"].traits["name"] == "李娜"
    assert by_type["track"].properties == {"order_no": "3000001", "revenue_fen": 25800}
    assert by_type["group"].group_id == "community-vip-1"
    assert by_type["alias"].previous_id == "anon-9"
    assert by_type["track"].context["library"]["name"] == "analytics-python"


def test_events_are_browsable_and_masked_for_viewers(client: TestClient, db: Database) -> None:
    from siyu.accounts.contracts import Role
    from tests.conftest import login

    a = make_actor(db, "acme")
    for i in range(3):
        client.post(
            "/v1/identify",
            json={
                "userId": f"u-{i}",
                "traits": {"phone": "13812345678", "name": "王小明", "email": "xm@qq.com", "city": "上海"},
            },
            headers=basic(a.ingest_key),
        )
    client.post("/v1/track", json={"anonymousId": "anon", "event": "Link Clicked"}, headers=basic(a.ingest_key))
    full = client.get("/api/v1/events", params={"type": "identify", "limit": 2}, headers=a.bearer).json()
    assert [e["user_id"] for e in full["items"]] == ["u-2", "u-1"] and full["next_cursor"]
    assert full["items"][0]["traits"]["phone"] == "13812345678"
    only = client.get("/api/v1/events", params={"person": "anon"}, headers=a.bearer).json()["items"]
    assert [e["event"] for e in only] == ["Link Clicked"]
    viewer = make_actor(db, "acme", role=Role.VIEWER)
    login(client, viewer.email)
    masked = client.get("/api/v1/events", params={"type": "identify"}).json()["items"][0]["traits"]
    assert masked == {"phone": "138****5678", "name": "王**", "email": "x***@qq.com", "city": "上海"}


def test_anonymous_visits_stitch_to_the_person_on_identify(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    h = basic(a.ingest_key)
    client.post("/v1/page", json={"anonymousId": "dev-1", "name": "首页"}, headers=h)
    client.post("/v1/track", json={"anonymousId": "dev-1", "event": "Product Added"}, headers=h)
    client.post("/v1/track", json={"userId": "u-9", "event": "Order Completed"}, headers=h)
    before = {e["event"]: e["profile_id"] for e in client.get("/api/v1/events", headers=a.bearer).json()["items"]}
    assert before["首页"] == before["Product Added"] != before["Order Completed"]
    client.post(
        "/v1/identify",
        json={"userId": "u-9", "anonymousId": "dev-1", "traits": {"phone": "138 1234 5678", "name": "李娜"}},
        headers=h,
    )
    # Another device of the same person, known only by the phone it logged in with.
    client.post("/v1/identify", json={"anonymousId": "dev-2", "traits": {"mobile": "+8613812345678"}}, headers=h)
    after = client.get("/api/v1/events", headers=a.bearer).json()["items"]
    assert len({e["profile_id"] for e in after}) == 1
    stranger = client.post("/v1/track", json={"userId": "u-10", "event": "x"}, headers=h)
    assert stranger.status_code == 200
    people = {e["profile_id"] for e in client.get("/api/v1/events", headers=a.bearer).json()["items"]}
    assert len(people) == 2


def test_alias_joins_previous_id_and_user_id(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    h = basic(a.ingest_key)
    client.post("/v1/track", json={"anonymousId": "old-device", "event": "Page Viewed"}, headers=h)
    client.post("/v1/track", json={"userId": "u-1", "event": "Signed Up"}, headers=h)
    client.post("/v1/alias", json={"previousId": "old-device", "userId": "u-1"}, headers=h)
    events = client.get("/api/v1/events", headers=a.bearer).json()["items"]
    assert len({e["profile_id"] for e in events}) == 1
