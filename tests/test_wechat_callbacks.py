"""WeChat official-account callbacks, with pushes built and encrypted by an independent
implementation (wechatpy) as WeChat's servers would send them."""

from __future__ import annotations

import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from wechatpy.crypto import WeChatCrypto

from siyu.ingest.wechat.crypto import decrypt, encrypt, sha1_signature
from siyu.storage.session import Database
from tests.conftest import make_actor

APP = "wx5d3e8a1b2c4f6a7b"
TOKEN = "siyuToken2026"
AES = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
OPENID = "oMpAbCdEfGhIjKlMnOpQrStUvWxY"


def test_crypto_matches_the_published_vector() -> None:
    echostr = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
    assert sha1_signature("123456", "1411443780", "437374425", echostr) == "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
    assert decrypt(AES, echostr, "wx49f0ab532d5d035a") == "5927782489442352469"
    # Our encryption is readable by wechatpy and the other way round.
    ours = encrypt(AES, "<xml><a>你好</a></xml>", APP)
    theirs = WeChatCrypto(TOKEN, AES, APP)
    envelope = f"<xml><Encrypt><![CDATA[{ours}]]></Encrypt></xml>"
    plain = theirs.decrypt_message(envelope, sha1_signature(TOKEN, "1", "2", ours), "1", "2")
    assert plain == "<xml><a>你好</a></xml>"


def _connect(client: TestClient, bearer: dict[str, str], aes: bool = True) -> None:
    body = {"kind": "oa", "app_id": APP, "name": "溪谷美妆服务号", "token": TOKEN}
    if aes:
        body["encoding_aes_key"] = AES
    r = client.put("/api/v1/wechat/apps", json=body, headers=bearer)
    assert r.status_code == 200 and "token" not in r.text


def _signature(ts: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([TOKEN, ts, nonce])).encode()).hexdigest()


def _push(client: TestClient, xml: str, ts: str = "1763800000", nonce: str = "8888") -> int:
    envelope = WeChatCrypto(TOKEN, AES, APP).encrypt_message(xml, nonce, ts)
    msg_signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", envelope).group(1)  # type: ignore[union-attr]
    r = client.post(
        f"/callbacks/wechat/{APP}",
        content=envelope.encode(),
        params={
            "signature": _signature(ts, nonce),
            "timestamp": ts,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": msg_signature,
            "openid": OPENID,
        },
    )
    return r.status_code


def follow(scene: str = "", created: int = 1763800000) -> str:
    key = f"<EventKey><![CDATA[qrscene_{scene}]]></EventKey>" if scene else ""
    return (
        f"<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[subscribe]]></Event>{key}</xml>"
    )


def test_url_verification(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    _connect(client, a.bearer)
    ok = client.get(
        f"/callbacks/wechat/{APP}",
        params={"signature": _signature("1", "2"), "timestamp": "1", "nonce": "2", "echostr": "hello-echo"},
    )
    assert ok.status_code == 200 and ok.text == "hello-echo"
    bad = client.get(
        f"/callbacks/wechat/{APP}", params={"signature": "0" * 40, "timestamp": "1", "nonce": "2", "echostr": "x"}
    )
    assert bad.status_code == 403
    assert client.get("/callbacks/wechat/wx0000000000000000", params={"signature": "x"}).status_code == 404


def test_encrypted_follow_with_scene_becomes_an_event_once(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    _connect(client, a.bearer)
    assert _push(client, follow("package-card-2026")) == 200
    assert _push(client, follow("package-card-2026")) == 200  # WeChat's retry
    events = client.get("/api/v1/events", headers=a.bearer).json()["items"]
    assert [(e["event"], e["properties"].get("scene")) for e in events] == [("OA Followed", "package-card-2026")]
    [profile] = client.get("/api/v1/profiles", params={"q": OPENID}, headers=a.bearer).json()["items"]
    detail = client.get(f"/api/v1/profiles/{profile['id']}", headers=a.bearer).json()
    assert {(i["kind"], i["scope"], i["value"]) for i in detail["identities"]} == {("openid", APP, OPENID)}


def test_receipts_unfollows_and_messages(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    _connect(client, a.bearer)
    receipt = (
        f"<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        "<CreateTime>1763800100</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID>"
        "<Status><![CDATA[failed:user block]]></Status></xml>"
    )
    text = (
        f"<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        "<CreateTime>1763800200</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[退订]]></Content><MsgId>1234567890123456</MsgId></xml>"
    )
    unfollow = follow().replace("subscribe", "unsubscribe").replace("1763800000", "1763800300")
    for xml in (receipt, text, unfollow):
        assert _push(client, xml) == 200
    events = {e["event"]: e["properties"] for e in client.get("/api/v1/events", headers=a.bearer).json()["items"]}
    assert events["OA Template Receipt"] | {} == {
        "app_id": APP,
        "msg_type": "event",
        "msg_id": "200163836",
        "status": "failed:user block",
        "delivered": False,
    }
    assert events["OA Message Received"]["content"] == "退订"
    assert "OA Unfollowed" in events


def subscription(event: str, created: int, *choices: tuple[str, str]) -> str:
    element = "SubscribeMsgPopupEvent" if event == "subscribe_msg_popup_event" else "SubscribeMsgChangeEvent"
    items = "".join(
        f"<List><TemplateId><![CDATA[{t}]]></TemplateId><SubscribeStatusString><![CDATA[{st}]]>"
        "</SubscribeStatusString><PopupScene>2</PopupScene></List>"
        for t, st in choices
    )
    return (
        f"<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><{element}>{items}</{element}></xml>"
    )


def test_subscription_notification_choices_are_events_and_consent(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    _connect(client, a.bearer)
    popup = subscription("subscribe_msg_popup_event", 1763800400, ("tpl-ship", "accept"), ("tpl-promo", "reject"))
    assert _push(client, popup) == 200
    assert _push(client, popup) == 200  # WeChat's retry records nothing twice
    [event] = client.get("/api/v1/events", headers=a.bearer).json()["items"]
    assert event["event"] == "OA Notifications Chosen"
    assert event["properties"]["templates"] == [
        {"template_id": "tpl-ship", "status": "accept", "scene": "2"},
        {"template_id": "tpl-promo", "status": "reject", "scene": "2"},
    ]
    [profile] = client.get("/api/v1/profiles", params={"q": OPENID}, headers=a.bearer).json()["items"]

    def consents() -> list[dict[str, object]]:
        detail = client.get(f"/api/v1/profiles/{profile['id']}", headers=a.bearer).json()
        return [c for c in detail["consents"] if c["channel"] == "wechat_oa"]

    [granted] = consents()
    assert (granted["status"], granted["purpose"], granted["source"]) == (
        "granted",
        "marketing",
        "wechat_oa:subscribe_msg",
    )
    assert granted["proof"]["templates"][0]["template_id"] == "tpl-ship"
    # Later, in the account's settings, the follower turns the accepted template off.
    assert _push(client, subscription("subscribe_msg_change_event", 1763800500, ("tpl-ship", "reject"))) == 200
    [withdrawn] = consents()
    assert withdrawn["status"] == "withdrawn" and withdrawn["proof"]["event"] == "subscribe_msg_change_event"


@pytest.mark.parametrize("tamper", ["signature", "msg_signature", "other_app"])
def test_forged_pushes_are_refused_and_nothing_is_stored(client: TestClient, db: Database, tamper: str) -> None:
    a = make_actor(db, "acme")
    _connect(client, a.bearer)
    ts, nonce = "1763800000", "7777"
    app_for_crypto = "wx0000000000000001" if tamper == "other_app" else APP
    envelope = WeChatCrypto(TOKEN, AES, app_for_crypto).encrypt_message(follow("x"), nonce, ts)
    msg_signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", envelope).group(1)  # type: ignore[union-attr]
    params = {
        "signature": _signature(ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": msg_signature,
    }
    if tamper == "signature":
        params["signature"] = "f" * 40
    if tamper == "msg_signature":
        params["msg_signature"] = "f" * 40
    r = client.post(f"/callbacks/wechat/{APP}", content=envelope.encode(), params=params)
    assert r.status_code == 403 and r.json()["code"] == "callback_rejected"
    assert client.get("/api/v1/events", headers=a.bearer).json()["items"] == []


def test_plain_mode_and_a_billion_laughs(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    _connect(client, a.bearer, aes=False)
    params = {"signature": _signature("5", "6"), "timestamp": "5", "nonce": "6"}
    assert client.post(f"/callbacks/wechat/{APP}", content=follow().encode(), params=params).status_code == 200
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><xml><c>&b;</c></xml>'
    assert client.post(f"/callbacks/wechat/{APP}", content=bomb.encode(), params=params).status_code == 403
    assert len(client.get("/api/v1/events", headers=a.bearer).json()["items"]) == 1


def test_an_app_belongs_to_one_workspace(client: TestClient, db: Database) -> None:
    a, b = make_actor(db, "acme"), make_actor(db, "beta")
    _connect(client, a.bearer)
    r = client.put("/api/v1/wechat/apps", json={"kind": "oa", "app_id": APP, "token": "stolen1"}, headers=b.bearer)
    assert r.status_code == 409
    assert _push(client, follow()) == 200  # still verified with A's token, stored in A
    assert len(client.get("/api/v1/events", headers=a.bearer).json()["items"]) == 1
    assert client.get("/api/v1/events", headers=b.bearer).json()["items"] == []
