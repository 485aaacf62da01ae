"""Channels through the HTTP API: accounts with sealed secrets, the policy, templates checked
and previewed, quick sends with their interception report, the worker dispatching, and receipts,
replies and unsubscribes coming back — forged ones changing nothing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from wechatpy.crypto import WeChatCrypto

from siyu.accounts.contracts import Role
from siyu.channels.tables import ChannelAccount, Message, MessageReceipt
from siyu.core.clock import utcnow
from siyu.core.settings import get_settings
from siyu.jobs.tables import Job
from siyu.jobs.worker import Worker
from siyu.profiles.consent import Channel, Purpose, has_consent
from siyu.profiles.tables import ConsentRecord
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import TEST_SECRET, Actor, login, make_actor
from tests.fakes.aliyun_sms import FakeAliyunSms
from tests.fakes.server import FakeServer
from tests.fakes.tencent_sms import FakeTencentSms

PHONES = [f"1380013800{i}" for i in range(4)]


@pytest.fixture(autouse=True)
def worker_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Workers read the installation's settings: the same secret the app seals with."""
    monkeypatch.setenv("SIYU_SECRET_KEY", TEST_SECRET)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def people(client: TestClient, a: Actor, consent: bool = True) -> list[str]:
    ids = []
    for i, phone in enumerate(PHONES):
        body = {"userId": f"u{i}", "traits": {"phone": phone, "name": f"会员{i}", "city": "上海"}}
        assert client.post("/v1/identify", json=body, auth=(a.ingest_key, "")).status_code == 200
        if consent:
            record = {
                "address": {"kind": "phone", "value": phone}, "channel": "sms", "purpose": "marketing",
                "status": "granted", "at": "2026-11-01T00:00:00Z", "source": "form", "proof": {"text_version": "v1"},
            }  # fmt: skip
            assert client.post("/api/v1/consents", json={"records": [record]}, headers=a.bearer).status_code == 201
        ids.append(client.get("/api/v1/profiles", params={"q": phone}, headers=a.bearer).json()["items"][0]["id"])
    return ids


def no_quiet_hours(client: TestClient, a: Actor) -> None:
    """Tests run at any hour: marketing must not wait for the morning."""
    body = {"quiet_hours": {}, "caps": [], "sensitive_words": ""}
    assert client.put("/api/v1/channels/policy", json=body, headers=a.bearer).status_code == 200


def run_jobs(db: Database) -> None:
    """Run every job, the ones scheduled for later too (time moved on), until none is left."""
    worker = Worker(db, lease_seconds=30)
    for _ in range(5):
        with db.transaction(Scope.unscoped_system()) as s:
            s.execute(update(Job).where(Job.status == "scheduled").values(run_at=utcnow()))
        if not worker.run_until_idle():
            return


def statuses(db: Database, a: Actor) -> dict[str, str]:
    with db.read(Scope.workspace(a.workspace_id)) as s:
        return {m.address: m.status for m in s.scalars(select(Message))}


SMS_TEMPLATE = {
    "name": "积分提醒",
    "channel": "sms",
    "kind": "marketing",
    "body": "{{ profile.name }}，积分即将到期 拒收请回复R",
}


def test_accounts_keep_secrets_sealed_and_check_their_fields(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    providers = {p["name"]: p for p in client.get("/api/v1/channels/providers", headers=a.bearer).json()}
    assert {
        "sandbox",
        "aliyun_sms",
        "tencent_sms",
        "smtp",
        "wechat_oa",
        "miniprogram",
        "wecom",
        "jpush",
        "webhook",
    } <= set(providers)
    body = {
        "channel": "sms", "provider": "tencent_sms", "name": "腾讯云",
        "settings": {"sign_name": "私域美妆", "sdk_app_id": "1400006666"},
        "secrets": {"secret_id": "AKIDxyz", "secret_key": "very-secret-key"},
    }  # fmt: skip
    created = client.post("/api/v1/channels/accounts", json=body, headers=a.bearer)
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["secrets_set"] == ["secret_id", "secret_key"] and "very-secret-key" not in created.text
    assert account["is_default"] and account["callback_urls"]["report"].endswith("/status")
    with db.read(Scope.workspace(a.workspace_id)) as s:
        row = s.get(ChannelAccount, account["id"])
        assert row is not None and "very-secret-key" not in row.secrets_sealed
    # Updating without the secrets keeps them.
    kept = client.put(f"/api/v1/channels/accounts/{account['id']}", json={**body, "secrets": {}}, headers=a.bearer)
    assert kept.json()["secrets_set"] == ["secret_id", "secret_key"]
    missing = client.post("/api/v1/channels/accounts", json={**body, "name": "x", "settings": {}}, headers=a.bearer)
    assert missing.status_code == 422 and "sign_name" in missing.json()["message"]
    wrong = client.post("/api/v1/channels/accounts", json={**body, "name": "y", "channel": "email"}, headers=a.bearer)
    assert wrong.status_code == 422
    analyst = make_actor(db, "acme", role=Role.ANALYST)
    login(client, analyst.email)
    assert client.post("/api/v1/channels/accounts", json={**body, "name": "z"}).status_code == 403
    [seen] = client.get("/api/v1/channels/accounts").json()
    assert seen["callback_urls"] == {}  # the callback secret is for admins


def test_policy_round_trip(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    default = client.get("/api/v1/channels/policy", headers=a.bearer).json()
    assert default["quiet_hours"]["sms"] == {"start": "09:00", "end": "20:00", "action": "delay"}
    assert {"channel": "sms", "max": 2, "days": 7} in default["caps"] and default["timezone"] == "Asia/Shanghai"
    new = {
        "quiet_hours": {"sms": {"start": "10:00", "end": "21:00", "action": "drop"}},
        "caps": [],
        "sensitive_words": "秒杀\n清仓",
    }
    assert client.put("/api/v1/channels/policy", json=new, headers=a.bearer).status_code == 200
    assert client.get("/api/v1/channels/policy", headers=a.bearer).json()["sensitive_words"] == "秒杀\n清仓"
    bad = client.put(
        "/api/v1/channels/policy",
        json={**new, "quiet_hours": {"sms": {"start": "9", "end": "20:00"}}},
        headers=a.bearer,
    )
    assert bad.status_code == 422
    # The workspace's own words are screened from then on.
    client.post(
        "/api/v1/channels/accounts",
        json={"channel": "sms", "provider": "sandbox", "name": "sb", "settings": {"sign_name": "品牌"}},
        headers=a.bearer,
    )
    check = client.post(
        "/api/v1/templates/check", json={**SMS_TEMPLATE, "body": "清仓大促 拒收请回复R"}, headers=a.bearer
    ).json()
    assert not check["ok"] and "清仓" in check["problems"][0]["message"]


def test_suppressions_added_by_hand_are_checked_for_their_channel(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    good = [
        ("sms", "138 0013 8000", "+8613800138000"),
        ("email", " Li.Lei@Example.COM ", "li.lei@example.com"),
        ("wechat_oa", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        ("wecom", "wmqfasd1e19278asdf99as", "wmqfasd1e19278asdf99as"),
        ("app_push", "user-42", "user-42"),
    ]
    entries = [{"channel": ch, "address": raw} for ch, raw, _ in good]
    r = client.post("/api/v1/channels/suppressions", json={"entries": entries}, headers=a.bearer)
    assert r.json() == {"added": len(good)}
    listed = client.get("/api/v1/channels/suppressions", headers=a.bearer).json()["items"]
    assert sorted((x["channel"], x["address"]) for x in listed) == sorted((ch, kept) for ch, _, kept in good)
    bad = [
        ("sms", "138****8000", "masked"),
        ("email", "li.lei@", "not an email address"),
        ("wechat_oa", "o<script>", "characters WeChat ids never contain"),
        ("wecom", "short", "characters WeChat ids never contain"),
        ("app_push", "user\n42", "is not an address"),
    ]
    fine = {"channel": "sms", "address": "13800138001"}
    for channel, raw, why in bad:
        entries = [fine, {"channel": channel, "address": raw}]
        refused = client.post("/api/v1/channels/suppressions", json={"entries": entries}, headers=a.bearer)
        assert refused.status_code == 422, (channel, raw)
        assert refused.json()["message"].startswith("entries[1].address:") and why in refused.json()["message"]
    # Each refused request added nothing, not even its good entry.
    assert len(client.get("/api/v1/channels/suppressions", headers=a.bearer).json()["items"]) == len(good)


def test_templates_are_checked_previewed_and_sent_through_the_sandbox(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    ids = people(client, a)
    no_quiet_hours(client, a)
    client.post(
        "/api/v1/channels/accounts",
        json={
            "channel": "sms",
            "provider": "sandbox",
            "name": "sb",
            "settings": {"sign_name": "私域美妆", "delay_seconds": "0"},
        },
        headers=a.bearer,
    )
    refused = client.post(
        "/api/v1/templates", json={**SMS_TEMPLATE, "body": "{{ profile.nick }} 积分到期"}, headers=a.bearer
    )
    assert refused.status_code == 422
    paths = {p["path"] for p in refused.json()["details"]["problems"]}
    assert paths == {"body"}
    check = client.post("/api/v1/templates/check", json=SMS_TEMPLATE, headers=a.bearer).json()
    assert check["ok"] and check["sms"]["text"].startswith("【私域美妆】会员") and check["sms"]["parts"] == 1
    template = client.post("/api/v1/templates", json=SMS_TEMPLATE, headers=a.bearer).json()
    assert client.post("/api/v1/templates", json=SMS_TEMPLATE, headers=a.bearer).status_code == 409
    shown = client.post(
        f"/api/v1/templates/{template['id']}/preview", json={"profile_id": ids[1]}, headers=a.bearer
    ).json()
    assert shown["text"] == "会员1，积分即将到期 拒收请回复R" and shown["sms"]["length"] == 23
    suppressed = client.post(
        "/api/v1/channels/suppressions",
        json={"entries": [{"channel": "sms", "address": "138 0013 8003"}]},
        headers=a.bearer,
    )
    assert suppressed.json() == {"added": 1}
    send = {"template_id": template["id"], "profile_ids": ids, "at": "2026-12-01T04:00:00Z"}  # 12:00 in Shanghai
    report = client.post("/api/v1/sends/preview", json=send, headers=a.bearer).json()
    assert (report["total"], report["queued"], report["skipped"]) == (4, 3, {"suppressed": 1})
    assert report["samples"]["suppressed"] == [ids[3]]
    sent = client.post("/api/v1/sends", json={**send, "at": None}, headers=a.bearer)
    assert sent.status_code == 201 and sent.json()["written"] == 4
    source = sent.json()["source"]
    run_jobs(db)  # dispatch, then the sandbox's receipts
    got = statuses(db, a)
    assert got["+8613800138003"] == "skipped"
    assert {got[f"+86{p}"] for p in PHONES[:3]} <= {"delivered", "undelivered"}
    ledger = client.get("/api/v1/channels/messages", params={"source": source}, headers=a.bearer).json()["items"]
    assert len(ledger) == 4 and all(m["source"] == source for m in ledger)
    analyst = make_actor(db, "acme", role=Role.ANALYST)
    login(client, analyst.email)
    masked = client.get("/api/v1/channels/messages", params={"status": "skipped"}).json()["items"][0]
    assert masked["address"] == "138****8003" and masked["content"] == {"template": ""}
    assert client.post(f"/api/v1/templates/{template['id']}/preview", json={"profile_id": ids[1]}).status_code == 403


def test_aliyun_receipts_and_replies_through_the_callback(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    ids = people(client, a)
    no_quiet_hours(client, a)
    fake = FakeAliyunSms("LTAIkey", "aliyun-secret", {"SMS_900": "${name}，积分即将到期。拒收请回复R"})
    server = FakeServer(fake)
    try:
        account = client.post(
            "/api/v1/channels/accounts",
            json={
                "channel": "sms", "provider": "aliyun_sms", "name": "阿里云",
                "settings": {"sign_name": "私域美妆", "endpoint": server.url},
                "secrets": {"access_key_id": "LTAIkey", "access_key_secret": "aliyun-secret"},
            },
            headers=a.bearer,
        ).json()  # fmt: skip
        template = client.post(
            "/api/v1/templates",
            json={
                **SMS_TEMPLATE,
                "body": "${name}，积分即将到期。拒收请回复R",
                "provider_template": "SMS_900",
                "fields": {"name": "{{ profile.name }}"},
            },
            headers=a.bearer,
        ).json()
        client.post("/api/v1/sends", json={"template_id": template["id"], "profile_ids": ids}, headers=a.bearer)
        run_jobs(db)
        assert len(fake.sent) == 4 and fake.sent[0].params == {"name": "会员0"}
        assert set(statuses(db, a).values()) == {"sent"}
        report_url = account["callback_urls"]["report"].replace("http://127.0.0.1:8000", "")
        reports = fake.delivery_reports()
        reports[1].update(success=False, err_code="MK:0001")
        assert client.post(report_url, json=reports).json() == {"code": 0, "msg": "接收成功"}
        assert client.post(report_url, json=reports).status_code == 200  # Aliyun retries: counted once
        got = statuses(db, a)
        assert sorted(got.values()) == ["delivered", "delivered", "delivered", "undelivered"]
        with db.read(Scope.workspace(a.workspace_id)) as s:
            receipts = s.execute(select(MessageReceipt.message_id, MessageReceipt.kind)).all()
            message_ids = set(s.scalars(select(Message.id)))
        assert len(receipts) == 4  # the replayed reports were stored once
        assert {m for m, _ in receipts} == message_ids
        assert sorted(k for _, k in receipts) == ["delivered", "delivered", "delivered", "undelivered"]
        forged = report_url.rsplit("/", 2)[0] + "/0123456789abcdef0123456789abcdef/report"
        assert client.post(forged, json=reports).status_code == 404
        reply_url = account["callback_urls"]["reply"].replace("http://127.0.0.1:8000", "")
        up = [
            {
                "phone_number": PHONES[0],
                "content": "R",
                "send_time": "2026-11-24 10:00:00",
                "dest_code": "1",
                "sequence_id": "77",
            }
        ]
        assert client.post(forged.replace("/report", "/reply"), json=up).status_code == 404
        with db.read(Scope.workspace(a.workspace_id)) as s:
            [identity] = [
                i
                for i in client.get(f"/api/v1/profiles/{ids[0]}", headers=a.bearer).json()["identities"]
                if i["kind"] == "phone"
            ]
            assert has_consent(s, identity["id"], Channel.SMS, Purpose.MARKETING)
        assert client.post(reply_url, json=up).status_code == 200
        with db.read(Scope.workspace(a.workspace_id)) as s:
            assert not has_consent(s, identity["id"], Channel.SMS, Purpose.MARKETING)
        listed = client.get("/api/v1/channels/suppressions", headers=a.bearer).json()["items"]
        assert [(x["address"], x["reason"]) for x in listed] == [(f"+86{PHONES[0]}", "replied 'R'")]
        # The next send cycle skips them.
        again = client.post(
            "/api/v1/sends/preview", json={"template_id": template["id"], "profile_ids": ids}, headers=a.bearer
        ).json()
        assert again["skipped"].get("suppressed") == 1
    finally:
        server.close()


def test_tencent_status_and_reply_callbacks(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    ids = people(client, a, consent=False)
    fake = FakeTencentSms("AKID", "tencent-key", "1400000001", {"55": "您的订单已发货"})
    server = FakeServer(fake)
    try:
        account = client.post(
            "/api/v1/channels/accounts",
            json={
                "channel": "sms", "provider": "tencent_sms", "name": "腾讯云",
                "settings": {
                    "sign_name": "品牌", "sdk_app_id": "1400000001", "endpoint": server.url, "host": server.url[7:],
                },
                "secrets": {"secret_id": "AKID", "secret_key": "tencent-key"},
            },
            headers=a.bearer,
        ).json()  # fmt: skip
        notice = client.post(
            "/api/v1/templates",
            json={
                "name": "发货",
                "channel": "sms",
                "kind": "transactional",
                "body": "您的订单已发货",
                "provider_template": "55",
            },
            headers=a.bearer,
        ).json()
        client.post("/api/v1/sends", json={"template_id": notice["id"], "profile_ids": ids[:2]}, headers=a.bearer)
        run_jobs(db)
        assert len(fake.sent) == 2
        status_url = account["callback_urls"]["report"].replace("http://127.0.0.1:8000", "")
        assert client.post(status_url, json=fake.status_reports()).json() == {"result": 0, "errmsg": "OK"}
        assert set(statuses(db, a).values()) == {"delivered"}
        reply = {
            "extend": "",
            "mobile": PHONES[1],
            "nationcode": "86",
            "sign": "品牌",
            "text": "TD",
            "time": 1763900000,
        }
        client.post(account["callback_urls"]["reply"].replace("http://127.0.0.1:8000", ""), json=reply)
        listed = client.get("/api/v1/channels/suppressions", params={"channel": "sms"}, headers=a.bearer).json()[
            "items"
        ]
        assert [x["address"] for x in listed] == [f"+86{PHONES[1]}"]
    finally:
        server.close()


def test_one_click_unsubscribe(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    client.post("/v1/identify", json={"userId": "m1", "traits": {"email": "wang@example.com"}}, auth=(a.ingest_key, ""))
    record = {
        "address": {"kind": "email", "value": "wang@example.com"}, "channel": "email", "purpose": "marketing",
        "status": "granted", "at": "2026-11-01T00:00:00Z", "source": "form", "proof": {"text_version": "v1"},
    }  # fmt: skip
    identity_id = client.post("/api/v1/consents", json={"records": [record]}, headers=a.bearer).json()["identity_ids"][
        0
    ]
    profile_id = client.get("/api/v1/profiles", params={"q": "wang@example.com"}, headers=a.bearer).json()["items"][0][
        "id"
    ]
    client.post(
        "/api/v1/channels/accounts", json={"channel": "email", "provider": "sandbox", "name": "mail"}, headers=a.bearer
    )
    template = client.post(
        "/api/v1/templates",
        json={"name": "月刊", "channel": "email", "kind": "marketing", "subject": "月刊", "body": "<p>新品</p>"},
        headers=a.bearer,
    ).json()
    client.post("/api/v1/sends", json={"template_id": template["id"], "profile_ids": [profile_id]}, headers=a.bearer)
    [message] = client.get("/api/v1/channels/messages", headers=a.bearer).json()["items"]
    path = re.sub(r"^https?://[^/]+", "", message["content"]["extra"]["unsubscribe_url"])
    page = client.get(path)
    assert page.status_code == 200 and "wang@example.com" in page.text and "确认退订" in page.text
    tampered = path[:-2] + ("AA" if not path.endswith("AA") else "BB")
    assert client.post(tampered, content=b"List-Unsubscribe=One-Click").status_code == 404
    done = client.post(
        path, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert done.status_code == 200 and "已退订" in done.text
    again = client.post(path, content=b"List-Unsubscribe=One-Click")  # clicked twice, or a provider's retry
    assert again.status_code == 200 and "已退订" in again.text
    with db.read(Scope.workspace(a.workspace_id)) as s:
        assert not has_consent(s, identity_id, Channel.EMAIL, Purpose.MARKETING)
        withdrawals = s.scalars(select(ConsentRecord).where(ConsentRecord.status == "withdrawn")).all()
        unsubscribes = s.scalars(select(MessageReceipt).where(MessageReceipt.kind == "unsubscribe")).all()
        assert (len(withdrawals), len(unsubscribes)) == (1, 1)  # recorded once
    assert client.get("/api/v1/channels/suppressions", headers=a.bearer).json()["items"][0]["reason"] == "unsubscribed"


APP = "wx5d3e8a1b2c4f6a7b"
TOKEN = "siyuToken2026"
AES = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
OPENID = "oMpAbCdEfGhIjKlMnOpQrStUvWxY"


def _push(client: TestClient, xml: str, ts: str = "1763800000", nonce: str = "8888", token: str = TOKEN) -> int:
    envelope = WeChatCrypto(token, AES, APP).encrypt_message(xml, nonce, ts)
    msg_signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", envelope).group(1)  # type: ignore[union-attr]
    signature = hashlib.sha1("".join(sorted([token, ts, nonce])).encode()).hexdigest()
    params: dict[str, Any] = {
        "signature": signature,
        "timestamp": ts,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": msg_signature,
    }
    return client.post(f"/callbacks/wechat/{APP}", content=envelope.encode(), params=params).status_code


def test_wechat_template_receipts_close_their_messages(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    client.put(
        "/api/v1/wechat/apps",
        json={"kind": "oa", "app_id": APP, "name": "服务号", "token": TOKEN, "encoding_aes_key": AES},
        headers=a.bearer,
    )
    client.post(
        "/v1/identify",
        json={"userId": "w1", "context": {"identifiers": [{"kind": "openid", "scope": APP, "value": OPENID}]}},
        auth=(a.ingest_key, ""),
    )
    client.post(
        "/api/v1/channels/accounts",
        json={
            "channel": "wechat_oa",
            "provider": "wechat_oa",
            "name": "oa",
            "settings": {"app_id": APP, "endpoint": "http://127.0.0.1:9"},
            "secrets": {"app_secret": "s"},
        },
        headers=a.bearer,
    )
    template = client.post(
        "/api/v1/templates",
        json={
            "name": "发货",
            "channel": "wechat_oa",
            "kind": "transactional",
            "provider_template": "TPL",
            "fields": {"thing2": "已发货"},
        },
        headers=a.bearer,
    ).json()
    profile_id = client.get("/api/v1/profiles", params={"q": "w1"}, headers=a.bearer).json()["items"][0]["id"]
    client.post("/api/v1/sends", json={"template_id": template["id"], "profile_ids": [profile_id]}, headers=a.bearer)
    with db.transaction(Scope.workspace(a.workspace_id)) as s:  # the provider's id for it
        message = s.scalars(select(Message)).one()
        message.status, message.provider_id = "sent", "200163836"
    receipt = (
        f"<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        "<CreateTime>1763800100</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID>"
        "<Status><![CDATA[failed:user block]]></Status></xml>"
    )
    assert _push(client, receipt, token="forged") == 403  # a bad signature changes nothing
    assert statuses(db, a) == {OPENID: "sent"}
    assert _push(client, receipt) == 200
    assert statuses(db, a) == {OPENID: "undelivered"}
    assert client.get("/api/v1/channels/suppressions", headers=a.bearer).json()["items"][0]["address"] == OPENID
