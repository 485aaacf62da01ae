"""Sign-in, sessions, CSRF, API keys and the error shape, through the HTTP API."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from siyu.accounts.tables import LoginSession
from siyu.core.clock import utcnow
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import PASSWORD, login, make_actor


def test_login_returns_session_with_workspace_and_role(client: TestClient, db: Database) -> None:
    actor = make_actor(db, "acme")
    login(client, actor.email)
    me = client.get("/api/v1/session").json()
    assert me["user"]["email"] == actor.email
    assert me["workspace"]["slug"] == "acme"
    assert me["role"] == "owner"
    assert [m["workspace"]["slug"] for m in me["workspaces"]] == ["acme"]
    assert "password" not in str(me).lower()


def test_wrong_password_and_unknown_user_get_the_same_answer(client: TestClient, db: Database) -> None:
    actor = make_actor(db, "acme")
    wrong = client.post("/api/v1/session/login", json={"email": actor.email, "password": "nope-nope"})
    unknown = client.post("/api/v1/session/login", json={"email": "ghost@example.com", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "code": "invalid_credentials",
            "message": "email or password is incorrect",
            "details": None,
        }
    )


def test_login_is_rate_limited_per_account(client: TestClient, db: Database) -> None:
    actor = make_actor(db, "acme")
    for _ in range(5):
        r = client.post("/api/v1/session/login", json={"email": actor.email, "password": "wrong-one"})
        assert r.status_code == 401
    blocked = client.post("/api/v1/session/login", json={"email": actor.email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "login_rate_limited"
    assert "Retry-After" in blocked.headers
    # An unknown address is limited the same way, so limits reveal nothing about accounts.
    for _ in range(5):
        client.post("/api/v1/session/login", json={"email": "ghost@example.com", "password": "x"})
    ghost = client.post("/api/v1/session/login", json={"email": "ghost@example.com", "password": "x"})
    assert ghost.status_code == 429


def test_expired_session_is_401(client: TestClient, db: Database) -> None:
    actor = make_actor(db, "acme")
    login(client, actor.email)
    assert client.get("/api/v1/dashboard").status_code == 200
    with db.transaction(Scope.unscoped_system()) as s:
        s.execute(update(LoginSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    r = client.get("/api/v1/dashboard")
    assert r.status_code == 401
    assert r.json()["code"] == "session_expired"


def test_no_credentials_is_401(client: TestClient) -> None:
    r = client.get("/api/v1/dashboard")
    assert r.status_code == 401
    assert set(r.json()) == {"code", "message", "details"}


def test_cookie_writes_need_the_csrf_token(client: TestClient, db: Database) -> None:
    actor = make_actor(db, "acme")
    csrf = login(client, actor.email)
    body = {"name": "web", "scope": "ingest"}
    missing = client.post("/api/v1/keys", json=body)
    assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
    wrong = client.post("/api/v1/keys", json=body, headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403
    ok = client.post("/api/v1/keys", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    assert ok.json()["token"].startswith("wk_")


def test_logout_ends_the_session(client: TestClient, db: Database) -> None:
    actor = make_actor(db, "acme")
    csrf = login(client, actor.email)
    assert client.post("/api/v1/session/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/session").status_code == 401


def test_api_key_bearer_and_revocation(client: TestClient, db: Database) -> None:
    actor = make_actor(db, "acme")
    assert client.get("/api/v1/dashboard", headers=actor.bearer).status_code == 200
    keys = client.get("/api/v1/keys", headers=actor.bearer).json()
    assert all("token" not in k and "key_hash" not in k for k in keys)
    mine = next(k for k in keys if k["name"] == "test")
    revoked = client.post(f"/api/v1/keys/{mine['id']}/revoke", headers=actor.bearer)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    after = client.get("/api/v1/dashboard", headers=actor.bearer)
    assert after.status_code == 401 and after.json()["code"] == "invalid_credentials"


def test_ingest_key_cannot_use_the_full_api(client: TestClient, db: Database) -> None:
    actor = make_actor(db, "acme")
    r = client.get("/api/v1/dashboard", headers={"Authorization": f"Bearer {actor.ingest_key}"})
    assert r.status_code == 403 and r.json()["code"] == "key_scope_insufficient"


def test_roles_limit_what_members_can_do(client: TestClient, db: Database) -> None:
    make_actor(db, "acme")
    viewer = make_actor(db, "acme", role=__import__("siyu.accounts.contracts", fromlist=["Role"]).Role.VIEWER)
    csrf = login(client, viewer.email)
    assert client.get("/api/v1/dashboard").status_code == 200
    denied = client.post("/api/v1/keys", json={"name": "x", "scope": "full"}, headers={"X-CSRF-Token": csrf})
    assert denied.status_code == 403 and denied.json()["code"] == "role_too_low"
    assert client.get("/api/v1/audit").status_code == 403


def test_malformed_json_is_422_with_field_errors(client: TestClient, db: Database) -> None:
    actor = make_actor(db, "acme")
    raw = client.post(
        "/api/v1/keys", content=b"{not json", headers={**actor.bearer, "Content-Type": "application/json"}
    )
    assert raw.status_code == 422
    assert raw.json()["code"] == "validation_failed"
    wrong = client.post("/api/v1/keys", json={"name": "", "scope": "everything"}, headers=actor.bearer)
    assert wrong.status_code == 422
    fields = {tuple(d["loc"]) for d in wrong.json()["details"]}
    assert ("body", "name") in fields and ("body", "scope") in fields


def test_state_changes_are_audited_and_queryable_by_admins(client: TestClient, db: Database) -> None:
    actor = make_actor(db, "acme")
    created = client.post("/api/v1/keys", json={"name": "sdk", "scope": "ingest"}, headers=actor.bearer).json()
    client.post(f"/api/v1/keys/{created['key']['id']}/revoke", headers=actor.bearer)
    page = client.get("/api/v1/audit", params={"limit": 2}, headers=actor.bearer).json()
    assert [e["action"] for e in page["items"]] == ["api_key.revoke", "api_key.create"]
    assert page["items"][0]["actor_type"] == "api_key"
    assert page["next_cursor"]
    rest = client.get("/api/v1/audit", params={"cursor": page["next_cursor"]}, headers=actor.bearer).json()
    ids = {e["id"] for e in page["items"]}
    assert rest["items"] and not ids & {e["id"] for e in rest["items"]}
    bad = client.get("/api/v1/audit", params={"cursor": "garbage!"}, headers=actor.bearer)
    assert bad.status_code == 422


def test_workspace_switcher(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    other = make_actor(db, "beta")
    from siyu.accounts import facade
    from siyu.accounts.contracts import Principal, Role

    with db.transaction(Scope.workspace(other.workspace_id)) as s:
        facade.add_member(
            s, Principal(workspace_id=other.workspace_id, role=Role.OWNER), user_id=a.user_id, role=Role.ANALYST
        )
    csrf = login(client, a.email)
    me = client.post(
        "/api/v1/session/workspace", json={"workspace_id": other.workspace_id}, headers={"X-CSRF-Token": csrf}
    ).json()
    assert me["workspace"]["slug"] == "beta" and me["role"] == "analyst"
    third = make_actor(db, "gamma")
    r = client.post(
        "/api/v1/session/workspace", json={"workspace_id": third.workspace_id}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 404


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}


def test_api_answers_are_never_cached_and_the_health_check_may_be(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    login(client, a.email)
    assert client.get("/api/v1/session").headers["cache-control"] == "no-store"
    assert client.get("/api/v1/nothing-here").headers["cache-control"] == "no-store"
    assert "cache-control" not in client.get("/healthz").headers
