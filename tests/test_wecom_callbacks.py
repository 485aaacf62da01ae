"""WeCom customer-contact callbacks, encrypted by an independent implementation (wechatpy)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from wechatpy.crypto.base import BasePrpCrypto
from wechatpy.enterprise.crypto import WeChatCrypto

from siyu.ingest.wechat.crypto import sha1_signature
from siyu.storage.session import Database
from tests.conftest import make_actor

CORP = "ww1c2d3e4f5a6b7c8d"
TOKEN = "wecomToken1"
AES = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
EXTERNAL = "wmExAbCdEfGhIjKlMnOpQrStUvWxYz12"


def _connect(client: TestClient, bearer: dict[str, str]) -> None:
    r = client.put(
        "/api/v1/wechat/apps",
        json={"kind": "wecom", "app_id": CORP, "token": TOKEN, "encoding_aes_key": AES},
        headers=bearer,
    )
    assert r.status_code == 200, r.text


def _push(client: TestClient, xml: str, ts: str = "1763800000", nonce: str = "42") -> int:
    envelope = WeChatCrypto(TOKEN, AES, CORP).encrypt_message(xml, nonce, ts)
    sig = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", envelope).group(1)  # type: ignore[union-attr]
    r = client.post(
        f"/callbacks/wecom/{CORP}",
        content=envelope.encode(),
        params={"msg_signature": sig, "timestamp": ts, "nonce": nonce},
    )
    return r.status_code


def contact(change: str, extra: str = "", created: int = 1763800000) -> str:
    return (
        "<xml><ToUserName><![CDATA[" + CORP + "]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change}]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>"
        f"<ExternalUserID><![CDATA[{EXTERNAL}]]></ExternalUserID>{extra}</xml>"
    )


def test_url_verification_decrypts_the_echostr(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    _connect(client, a.bearer)
    encrypted = BasePrpCrypto(WeChatCrypto(TOKEN, AES, CORP).key)._encrypt("1616140317555161061", CORP)
    echostr = encrypted.decode() if isinstance(encrypted, bytes) else encrypted
    params = {
        "msg_signature": sha1_signature(TOKEN, "1", "2", echostr),
        "timestamp": "1",
        "nonce": "2",
        "echostr": echostr,
    }
    r = client.get(f"/callbacks/wecom/{CORP}", params=params)
    assert r.status_code == 200 and r.text == "1616140317555161061"
    params["msg_signature"] = "0" * 40
    assert client.get(f"/callbacks/wecom/{CORP}", params=params).status_code == 403


def test_contact_added_with_state_and_welcome_code(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    _connect(client, a.bearer)
    extra = "<State><![CDATA[card-tmall-sku42]]></State><WelcomeCode><![CDATA[WELCOMECODE1]]></WelcomeCode>"
    assert _push(client, contact("add_external_contact", extra)) == 200
    assert _push(client, contact("add_external_contact", extra)) == 200  # retry
    assert _push(client, contact("del_follow_user", created=1763900000)) == 200
    events = client.get("/api/v1/events", headers=a.bearer).json()["items"]
    assert [e["event"] for e in events] == ["WeCom Staff Removed by Contact", "WeCom Contact Added"]
    added = events[1]["properties"]
    assert (added["state"], added["welcome_code"], added["staff_user_id"]) == (
        "card-tmall-sku42",
        "WELCOMECODE1",
        "zhangsan",
    )
    [profile] = client.get("/api/v1/profiles", params={"q": EXTERNAL}, headers=a.bearer).json()["items"]
    detail = client.get(f"/api/v1/profiles/{profile['id']}", headers=a.bearer).json()
    assert [(i["kind"], i["scope"]) for i in detail["identities"]] == [("wecom_external_userid", CORP)]


def test_group_changes_and_forgeries(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    _connect(client, a.bearer)
    chat = (
        "<xml><ToUserName><![CDATA[" + CORP + "]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        "<CreateTime>1763800500</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId>"
        "<ChangeType><![CDATA[update]]></ChangeType><UpdateDetail><![CDATA[add_member]]></UpdateDetail>"
        "<JoinScene>3</JoinScene><MemChangeCnt>1</MemChangeCnt></xml>"
    )
    assert _push(client, chat) == 200
    [event] = client.get("/api/v1/events", headers=a.bearer).json()["items"]
    assert event["event"] == "WeCom Group Changed" and event["properties"]["join_scene"] == "3"
    envelope = WeChatCrypto(TOKEN, AES, "ww0000000000000000").encrypt_message(contact("add_external_contact"), "1", "2")
    sig = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", envelope).group(1)  # type: ignore[union-attr]
    other_corp = client.post(
        f"/callbacks/wecom/{CORP}",
        content=envelope.encode(),
        params={"msg_signature": sig, "timestamp": "2", "nonce": "1"},
    )
    assert other_corp.status_code == 403
    assert client.post(f"/callbacks/wechat/{CORP}", content=b"<xml/>").status_code == 404  # not an OA
    assert len(client.get("/api/v1/events", headers=a.bearer).json()["items"]) == 1
