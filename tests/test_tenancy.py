"""Workspace isolation: a key or session of workspace A can neither read nor change anything of
workspace B, on every route; and the storage mechanism itself fails closed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.accounts.tables import ApiKey, Membership
from siyu.commerce.tables import Order
from siyu.core.clock import utcnow
from siyu.core.errors import TenancyError
from siyu.jobs.contracts import JobSpec
from siyu.jobs.queue import enqueue
from siyu.jobs.tables import Job
from siyu.profiles.tables import Profile
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import Actor, login, make_actor

# Session routes act on the caller's own login, not on workspace objects.
NOT_WORKSPACE_DATA = {
    "/api/v1/session",
    "/api/v1/session/login",
    "/api/v1/session/logout",
    "/api/v1/session/workspace",
    "/healthz",
    "/readyz",
}


def _b_objects(db: Database, b: Actor) -> dict[str, str]:
    with db.transaction(Scope.workspace(b.workspace_id)) as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.name == "test"))
        job_id = enqueue(s, JobSpec(task="jobs.purge_finished", payload={}, workspace_id=b.workspace_id))
        profile = Profile(display_name="王芳", traits={"city": "上海市"})
        s.add(profile)
        from siyu.ingest.wechat.oa import register_app

        register_app(s, secret_key="k" * 40, kind="oa", app_id=B_APP, token="secret1", aes_key=None)
        order = Order(
            platform="tmall",
            order_no="B-ORDER-1",
            buyer_kind="taobao_nick",
            buyer_id="b-nick",
            status="paid",
            total_fen=100,
            paid_fen=100,
            ordered_at=utcnow(),
        )
        s.add(order)
        from siyu.ingest.imports.tables import Import

        imported = Import(filename="b.csv", path="/nonexistent/b.csv", preset="taobao")
        s.add(imported)
        from siyu.analytics.tables import AnalyticsRun

        run = AnalyticsRun(status="done", error="B-RUN-ERROR")
        s.add(run)
        from siyu.tags.tables import Tag, TagCategory

        category = TagCategory(name="B-CATEGORY")
        s.add(category)
        s.flush()
        tag = Tag(name="B-TAG", kind="manual", category_id=category.id)
        s.add(tag)
        from siyu.segments.tables import Segment

        segment = Segment(name="B-SEGMENT", kind="static")
        s.add(segment)
        from siyu.segments.tables import Holdout

        holdout = Holdout(name="B-HOLDOUT", kind="use", share_bp=100, seed="holdout:b")
        s.add(holdout)
        from siyu.channels.tables import ChannelAccount, Message, MessageTemplate, Suppression

        account = ChannelAccount(channel="sms", provider="sandbox", name="B-ACCOUNT", settings={})
        template = MessageTemplate(name="B-TEMPLATE", channel="sms", kind="transactional", body="B-BODY")
        suppression = Suppression(channel="sms", address="+8613900000999", reason="B-REASON")
        message = Message(key="b:1", channel="sms", kind="transactional", address="+8613900000998", content={})
        s.add_all([account, template, suppression, message])
        s.flush()
        from siyu.campaigns.tables import Campaign

        campaign = Campaign(
            name="B-CAMPAIGN", segment_id=segment.id, variants=[{"key": "A", "template_id": template.id, "share": 100}]
        )
        s.add(campaign)
        from siyu.tracking.tables import Link

        link = Link(code="Bcode0000001", kind="qr", target="https://b.example/B-TARGET", name="B-LINK")
        s.add(link)
        from siyu.channels.tables import ChannelCode
        from siyu.landing.tables import LandingPage

        code = ChannelCode(
            kind="oa_qr",
            name="B-CODE",
            account_id=account.id,
            scene="sybbbbbbbbbb",
            ticket="t",
            url="https://b.example",
        )
        page = LandingPage(code="bbbbbbbb", name="B-PAGE", layout="signup", content={"title": "B-PAGE-TITLE"})
        s.add_all([code, page])
        s.flush()
        profile_id, order_id = profile.id, order.id
    assert key_id and job_id
    return {
        "key_id": key_id,
        "user_id": b.user_id,
        "job_id": job_id,
        "profile_id": profile_id,
        "order_id": order_id,
        "import_id": imported.id,
        "run_id": run.id,
        "tag_id": tag.id,
        "category_id": category.id,
        "segment_id": segment.id,
        "holdout_id": holdout.id,
        "account_id": account.id,
        "template_id": template.id,
        "suppression_id": suppression.id,
        "message_id": message.id,
        "campaign_id": campaign.id,
        "code": link.code,
        "code_id": code.id,
        "page_id": page.id,
    }


def _b_state(db: Database, b: Actor) -> dict[str, Any]:
    with db.transaction(Scope.workspace(b.workspace_id)) as s:
        return {
            "keys": sorted((k.id, k.revoked_at is None) for k in s.scalars(select(ApiKey))),
            "members": sorted((m.user_id, m.role) for m in s.scalars(select(Membership))),
            "jobs": sorted((j.id, j.status) for j in s.scalars(select(Job))),
        }


B_APP = "wx00000000000000bb"


def _routes(client: TestClient) -> list[tuple[str, str]]:
    """Every operation in the OpenAPI schema: new routes are covered without editing this test."""
    schema = client.app.openapi()  # type: ignore[attr-defined]
    return [
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        # Callbacks are authenticated by the provider's signature, not by workspace credentials;
        # tests/test_wechat_callbacks.py covers forged and foreign pushes.
        # Unsubscribe links (/u/…) carry their own signed token; tests/test_channels_api.py covers them.
        if path not in NOT_WORKSPACE_DATA and not path.startswith(("/callbacks/", "/u/"))
        for method in operations
    ]


BODIES = {
    # (users are global: adding B's user to A by email would be legitimate, so use nobody)
    ("PUT", "/api/v1/members"): lambda b: {"email": "nobody@example.com", "role": "viewer"},
    ("POST", "/api/v1/keys"): lambda b: {"name": "intruder", "scope": "full"},
    ("POST", "/api/v1/workspaces"): lambda b: {"name": "x", "slug": "intruder-ws"},
    ("POST", "/api/v1/profiles/{profile_id}/split"): lambda b: {"identity_ids": ["idn_x"]},
    ("POST", "/api/v1/profiles/{profile_id}/merge"): lambda b: {"other_profile_id": "pf_x"},
    ("PUT", "/api/v1/products"): lambda b: {"products": [{"sku": "A-1", "name": "x", "price_fen": 1}]},
    ("PUT", "/api/v1/tags/{tag_id}"): lambda b: {"name": "renamed", "kind": "manual"},
    ("POST", "/api/v1/tags/{tag_id}/people"): lambda b: {"profile_ids": ["pf_x"]},
    ("POST", "/api/v1/tags/{tag_id}/people/remove"): lambda b: {"profile_ids": ["pf_x"]},
    ("PUT", "/api/v1/segments/{segment_id}"): lambda b: {"name": "renamed", "kind": "static"},
    ("POST", "/api/v1/segments/{segment_id}/freeze"): lambda b: {"name": "stolen"},
    ("PUT", "/api/v1/channels/accounts/{account_id}"): lambda b: {"channel": "sms", "provider": "sandbox", "name": "x"},
    ("PUT", "/api/v1/templates/{template_id}"): lambda b: {"name": "x", "channel": "sms", "kind": "transactional"},
    ("POST", "/api/v1/templates/{template_id}/preview"): lambda b: {"profile_id": "pf_x"},
    ("PUT", "/api/v1/campaigns/{campaign_id}"): lambda b: {
        "name": "x",
        "variants": [{"key": "A", "template_id": "tpl_x", "share": 100}],
    },
    ("PUT", "/api/v1/landing-pages/{page_id}"): lambda b: {
        "name": "x",
        "layout": "signup",
        "content": {"title": "x", "button": "x", "success": "x", "consent_text": "x"},
    },
    ("POST", "/api/v1/campaigns/{campaign_id}/winner"): lambda b: {"variant": "A"},
    # B's app id: A must not be able to take it over.
    ("PUT", "/api/v1/wechat/apps"): lambda b: {"kind": "oa", "app_id": B_APP, "token": "abc123"},
}


# Required query parameters, so the route reaches its workspace check.
QUERIES = {
    ("GET", "/api/v1/segments/{segment_id}/audience"): {"platform": "tencent", "id_type": "HASH_MOBILE_PHONE"},
    ("GET", "/api/v1/segments/{segment_id}/audience/report"): {"platform": "tencent", "id_type": "HASH_MOBILE_PHONE"},
    ("GET", "/api/v1/holdouts/{holdout_id}/split"): {"segment_id": "sg_x"},
    ("GET", "/api/v1/holdouts/{holdout_id}/check"): {"profile_id": "pf_x"},
}


UPLOADS = {("POST", "/api/v1/tags/{tag_id}/file"): {"file": ("people.csv", b"phone\n13900000001\n", "text/csv")}}


@pytest.mark.parametrize("auth", ["bearer", "session"])
def test_workspace_a_cannot_touch_workspace_b_on_any_route(client: TestClient, db: Database, auth: str) -> None:
    a, b = make_actor(db, "alpha"), make_actor(db, "bravo")
    ids = _b_objects(db, b)
    before = _b_state(db, b)
    headers = a.bearer if auth == "bearer" else {"X-CSRF-Token": login(client, a.email)}
    b_markers = [
        b.workspace_id,
        b.email,
        b.user_id,
        *ids.values(),
        "王芳",
        "B-ORDER-1",
        "B-RUN-ERROR",
        "B-TAG",
        "B-CATEGORY",
        "B-SEGMENT",
        "B-HOLDOUT",
        "B-ACCOUNT",
        "B-TEMPLATE",
        "B-BODY",
        "B-REASON",
        "+8613900000999",
        "+8613900000998",
        "B-CAMPAIGN",
        "B-LINK",
        "B-TARGET",
    ]
    checked = 0
    for method, path in _routes(client):
        params = {name: ids[name] for name in _path_params(path)}
        url = path.format(**params)
        body = BODIES.get((method, path), lambda _b: None)(b)
        if (method, path) in UPLOADS:
            response = client.request(method, url, headers=headers, files=UPLOADS[(method, path)])
        else:
            query = QUERIES.get((method, path))
            response = client.request(method, url, headers=headers, json=body, params=query)
        text = response.text
        if params:
            assert response.status_code == 404, f"{method} {url} -> {response.status_code} {text}"
        else:
            assert response.status_code < 500, f"{method} {url} -> {response.status_code}"
        leaked = [m for m in b_markers if m in text]
        assert not leaked, f"{method} {url} leaked {leaked}"
        checked += 1
    assert checked >= 10
    after = _b_state(db, b)
    assert after == before


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def test_every_path_parameter_has_a_b_object(client: TestClient, db: Database) -> None:
    """A new route with a new id parameter must be added to the isolation test above."""
    b = make_actor(db, "bravo")
    known = set(_b_objects(db, b))
    for _method, path in _routes(client):
        assert set(_path_params(path)) <= known, f"add {path} to the tenancy test"


def test_unscoped_session_fails_closed(db: Database) -> None:
    session = db.session(Scope(workspace_id=None))
    with pytest.raises(TenancyError):
        session.scalars(select(Profile)).all()
    session.close()


def test_scoped_queries_see_only_their_workspace(db: Database) -> None:
    a, b = make_actor(db, "alpha"), make_actor(db, "bravo")
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        s.add(Profile(display_name="A person"))
    with db.transaction(Scope.workspace(b.workspace_id)) as s:
        s.add(Profile(display_name="B person"))
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        names = [p.display_name for p in s.scalars(select(Profile))]
        # Joins and subqueries are filtered too.
        joined = (
            s.execute(
                select(Profile.display_name).where(
                    Profile.id.in_(select(Profile.id).where(Profile.display_name.like("%person")))
                )
            )
            .scalars()
            .all()
        )
    assert names == ["A person"] and joined == ["A person"]


def test_writing_another_workspaces_row_is_refused(db: Database) -> None:
    a, b = make_actor(db, "alpha"), make_actor(db, "bravo")
    with pytest.raises(TenancyError), db.transaction(Scope.workspace(a.workspace_id)) as s:
        s.add(Profile(display_name="smuggled", workspace_id=b.workspace_id))
    with db.transaction(Scope.workspace(b.workspace_id)) as s:
        assert s.scalars(select(Profile)).all() == []


def test_bulk_updates_are_scoped(db: Database) -> None:
    from sqlalchemy import update

    a, b = make_actor(db, "alpha"), make_actor(db, "bravo")
    for actor in (a, b):
        with db.transaction(Scope.workspace(actor.workspace_id)) as s:
            s.add(Profile(display_name="same"))
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        s.execute(update(Profile).values(display_name="changed"))
    with db.transaction(Scope.workspace(b.workspace_id)) as s:
        assert [p.display_name for p in s.scalars(select(Profile))] == ["same"]


def test_aggregates_joins_and_core_statements_are_scoped_or_refused(db: Database) -> None:
    from sqlalchemy import func, text

    from siyu.identity.tables import Identity

    a, b = make_actor(db, "alpha"), make_actor(db, "bravo")
    with db.transaction(Scope.workspace(b.workspace_id)) as s:
        s.add_all([Profile(id="pf_b1", display_name="B1"), Profile(display_name="B2")])
        s.add(Identity(kind="phone", scope="", value="+8613800000001", profile_id="pf_b1"))
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        assert s.scalar(select(func.count()).select_from(Profile)) == 0
        assert s.scalar(select(func.count(Profile.id))) == 0
        joined = select(func.count()).select_from(Identity).join(Profile, Profile.id == Identity.profile_id)
        assert s.scalar(joined) == 0
        with pytest.raises(TenancyError):
            s.execute(select(func.count()).select_from(Profile.__table__))
        with pytest.raises(TenancyError):
            s.execute(text("SELECT count(*) FROM profiles"))


def test_dashboard_of_a_counts_nothing_of_b(client: TestClient, db: Database) -> None:
    a, b = make_actor(db, "alpha"), make_actor(db, "bravo")
    _b_objects(db, b)
    body = client.get("/api/v1/dashboard", headers=a.bearer).json()
    assert (body["profiles"], body["orders"], body["events"]) == (0, 0, 0)
    jobs = client.get("/api/v1/jobs/counts", headers=a.bearer).json()["counts"]
    assert sum(jobs.values()) == 0
