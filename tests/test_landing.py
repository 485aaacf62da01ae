"""Landing pages: a draft is checked and refused with every problem; only a published version is
served, escaped, and each visit logged (bots marked); the form files a phone and marketing
consent once per form handed out, with the consent text and version the person saw, refuses a
bad phone, a missing tick or a forged token with the reason shown, and never counts a replay
twice; a new version keeps the old text; an archived page is gone; workspaces never see each
other's pages."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from siyu.identity.tables import Identity
from siyu.landing.facade import CampaignVisits, campaign_visits
from siyu.landing.tables import LandingSubmission
from siyu.profiles.tables import ConsentRecord
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import make_actor

PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.47"
CONSENT = "我同意接收溪谷的会员短信（可随时回复 R 退订）"


def page_body(**content: Any) -> dict[str, Any]:
    return {
        "name": "双11入会",
        "layout": "coupon",
        "content": {
            "title": "入会领 30 元券",
            "subtitle": "双11 会员专享",
            "highlight": "¥30",
            "body": "填写手机号即可领取\n满 199 可用",
            "button": "立即领取",
            "success": "领取成功，券已发到你的会员账户",
            "consent_text": CONSENT,
            **content,
        },
    }


def visit(client: TestClient, code: str, ua: str = PHONE_UA, **params: str) -> Any:
    return client.get(f"/p/{code}", params=params, headers={"User-Agent": ua})


def token_of(html: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def send(
    client: TestClient, code: str, token: str, phone: str = "13900001111", consent: bool = True, **more: str
) -> Any:
    form = {"token": token, "phone": phone, **({"consent": "yes"} if consent else {}), **more}
    return client.post(f"/p/{code}", data=form, headers={"User-Agent": PHONE_UA})


def test_a_draft_with_problems_is_refused_with_each(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    bad = page_body(consent_text=" ", image_url="http://img.example/a.png", color="red")
    refused = client.post("/api/v1/landing-pages", json=bad, headers=a.bearer)
    assert refused.status_code == 422
    wheres = {p["where"] for p in refused.json()["details"]["problems"]}
    assert wheres == {"content.consent_text", "content.image_url", "content.color"}
    preview = client.post("/api/v1/landing-pages/preview", json=page_body(), headers=a.bearer)
    assert preview.status_code == 200 and "入会领 30 元券" in preview.text
    assert client.post("/api/v1/landing-pages/preview", json=bad, headers=a.bearer).status_code == 422


def test_only_a_published_page_is_served_and_its_visits_counted(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    made = client.post("/api/v1/landing-pages", json=page_body(title="<script>x</script>券"), headers=a.bearer).json()
    code = made["code"]
    assert made["status"] == "draft" and made["version"] == 0 and made["url"].endswith(f"/p/{code}")
    assert visit(client, code).status_code == 404  # a draft is not served
    published = client.post(f"/api/v1/landing-pages/{made['id']}/publish", headers=a.bearer).json()
    assert (published["status"], published["version"]) == ("published", 1)
    again = client.post(f"/api/v1/landing-pages/{made['id']}/publish", headers=a.bearer).json()
    assert again["version"] == 1  # nothing changed: no new version
    page = visit(client, code, utm_campaign="cmp_x", utm_content="B")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "<script>x</script>" not in page.text and "&lt;script&gt;x&lt;/script&gt;券" in page.text
    assert CONSENT in page.text and 'name="utm_campaign" value="cmp_x"' in page.text
    visit(client, code)  # the same person again
    visit(client, code, ua="TelegramBot (like TwitterBot)")  # a link preview
    visit(client, code, ua="Mozilla/5.0 (Linux; Android 14) Chrome/126.0 Mobile")  # someone else
    stats = client.get(f"/api/v1/landing-pages/{made['id']}", headers=a.bearer).json()
    assert (stats["visits"], stats["visitors"], stats["bots"], stats["submissions"]) == (3, 2, 1, 0)
    assert visit(client, "nosuchcd").status_code == 404


def test_the_form_files_a_phone_and_consent_once_with_the_text_seen(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    made = client.post("/api/v1/landing-pages", json=page_body(), headers=a.bearer).json()
    client.post(f"/api/v1/landing-pages/{made['id']}/publish", headers=a.bearer)
    code = made["code"]
    token = token_of(visit(client, code, utm_campaign="cmp_1", utm_content="A").text)

    no_tick = send(client, code, token, consent=False)
    assert no_tick.status_code == 422 and "请先阅读并勾选同意" in no_tick.text
    bad_phone = send(client, code, token, phone="12345")
    assert bad_phone.status_code == 422 and "请输入正确的手机号" in bad_phone.text and 'value="12345"' in bad_phone.text
    forged = send(client, code, token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert forged.status_code == 422 and "页面已过期" in forged.text
    other_page = client.post("/api/v1/landing-pages", json=page_body(), headers=a.bearer).json()
    client.post(f"/api/v1/landing-pages/{other_page['id']}/publish", headers=a.bearer)
    assert send(client, other_page["code"], token).status_code == 422  # a token is good on its own page only

    done = send(client, code, token, phone="+86 139-0000-1111", utm_campaign="cmp_1", utm_content="A")
    assert done.status_code == 200 and "领取成功" in done.text and 'name="phone"' not in done.text
    replay = send(client, code, token, utm_campaign="cmp_1", utm_content="A")
    assert replay.status_code == 200 and "领取成功" in replay.text
    other_phone = send(client, code, token, phone="13900009999")  # the same form again, another number
    assert other_phone.status_code == 200 and "领取成功" in other_phone.text

    with db.read(Scope.workspace(a.workspace_id)) as s:
        rows = list(s.scalars(select(LandingSubmission)))
        consents = list(s.scalars(select(ConsentRecord)))
        assert len(rows) == 1 and len(consents) == 1  # the replays filed nothing, not even a new person
        assert s.scalar(select(func.count()).select_from(Identity).where(Identity.value.like("%13900009999"))) == 0
        row, consent = rows[0], consents[0]
        assert (row.version, row.utm_campaign, row.utm_content) == (1, "cmp_1", "A") and row.profile_id
        assert (consent.channel, consent.purpose, consent.status) == ("sms", "marketing", "granted")
        assert consent.source == f"landing:{code}" and consent.identity_id == row.identity_id
        assert consent.proof["text"] == CONSENT and consent.proof["text_version"] == f"{made['id']}:v1"
        profile_id = row.profile_id
    profile = client.get(f"/api/v1/profiles/{profile_id}", headers=a.bearer).json()
    assert any(i["kind"] == "phone" for i in profile["identities"])
    assert profile["consents"][0]["proof"]["text"] == CONSENT
    listed = client.get(f"/api/v1/landing-pages/{made['id']}/submissions", headers=a.bearer).json()
    assert [(x["profile_id"], x["version"]) for x in listed] == [(profile_id, 1)]
    stats = client.get(f"/api/v1/landing-pages/{made['id']}", headers=a.bearer).json()
    assert stats["submissions"] == 1 and stats["conversion_rate"] == 1.0
    with db.read(Scope.workspace(a.workspace_id)) as s:
        assert campaign_visits(s, "cmp_1") == {"A": CampaignVisits(visitors=1, submissions=1)}
        assert campaign_visits(s, "cmp_2") == {}


def test_a_new_version_keeps_the_old_text_and_archiving_takes_the_page_down(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    made = client.post("/api/v1/landing-pages", json=page_body(), headers=a.bearer).json()
    client.post(f"/api/v1/landing-pages/{made['id']}/publish", headers=a.bearer)
    old_token = token_of(visit(client, made["code"]).text)
    new_text = "我同意接收溪谷的会员短信和邮件"
    changed = client.put(f"/api/v1/landing-pages/{made['id']}", json=page_body(consent_text=new_text), headers=a.bearer)
    assert changed.json()["version"] == 1 and CONSENT in visit(client, made["code"]).text  # not yet published
    assert client.post(f"/api/v1/landing-pages/{made['id']}/publish", headers=a.bearer).json()["version"] == 2
    token = token_of(visit(client, made["code"]).text)
    assert new_text in visit(client, made["code"]).text
    assert send(client, made["code"], token, phone="13900002222").status_code == 200
    assert send(client, made["code"], old_token, phone="13900003333").status_code == 200  # a form shown before
    versions = client.get(f"/api/v1/landing-pages/{made['id']}/versions", headers=a.bearer).json()
    assert [(v["version"], v["content"]["consent_text"]) for v in versions] == [(2, new_text), (1, CONSENT)]
    with db.read(Scope.workspace(a.workspace_id)) as s:
        texts = sorted(c.proof["text_version"] for c in s.scalars(select(ConsentRecord)))
        assert texts == [f"{made['id']}:v1", f"{made['id']}:v2"]  # the text each person was shown
    archived = client.post(f"/api/v1/landing-pages/{made['id']}/archive", headers=a.bearer).json()
    assert archived["status"] == "archived" and visit(client, made["code"]).status_code == 404
    assert send(client, made["code"], token).status_code == 404
    assert client.put(f"/api/v1/landing-pages/{made['id']}", json=page_body(), headers=a.bearer).status_code == 409
    assert client.get("/api/v1/landing-pages", headers=a.bearer).json() == []
    assert len(client.get("/api/v1/landing-pages", params={"archived": True}, headers=a.bearer).json()) == 1


def test_a_workspace_never_sees_another_workspaces_pages(client: TestClient, db: Database) -> None:
    a, b = make_actor(db, "acme"), make_actor(db, "other")
    made = client.post("/api/v1/landing-pages", json=page_body(), headers=a.bearer).json()
    assert client.get(f"/api/v1/landing-pages/{made['id']}", headers=b.bearer).status_code == 404
    assert client.post(f"/api/v1/landing-pages/{made['id']}/publish", headers=b.bearer).status_code == 404
    assert client.get("/api/v1/landing-pages", headers=b.bearer).json() == []
    client.post(f"/api/v1/landing-pages/{made['id']}/publish", headers=a.bearer)
    send(client, made["code"], token_of(visit(client, made["code"]).text))
    with db.read(Scope.workspace(b.workspace_id)) as s:
        assert s.scalar(select(func.count()).select_from(LandingSubmission)) == 0
