"""WeChat codes with a scene of their own: an official account's parametric QR code and a WeCom
「联系我」contact way, made against local fakes that check the calls as WeChat and WeCom do,
their QR images, a provider's refusal passed on with nothing kept, and the people who followed,
scanned or added an employee through each, counted from the signed callbacks that carry the
scene back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from siyu.storage.session import Database
from tests.conftest import make_actor
from tests.fakes.server import FakeServer
from tests.fakes.wechat import FakeWechat
from tests.fakes.wecom import FakeWecom
from tests.test_wechat_callbacks import APP
from tests.test_wechat_callbacks import _connect as connect_oa
from tests.test_wechat_callbacks import _push as push_oa
from tests.test_wecom_callbacks import CORP, contact
from tests.test_wecom_callbacks import _connect as connect_wecom
from tests.test_wecom_callbacks import _push as push_wecom

FOLLOWER = "oMpAbCdEfGhIjKlMnOpQrStUvWxY"
OTHER = "oMpZyXwVuTsRqPoNmLkJiHgFeDcBa"


@pytest.fixture
def wechat() -> Iterator[tuple[FakeWechat, str]]:
    fake = FakeWechat(APP, "app-secret")
    server = FakeServer(fake)
    yield fake, server.url
    server.close()


@pytest.fixture
def wecom() -> Iterator[tuple[FakeWecom, str]]:
    fake = FakeWecom(CORP, "contact-secret", customers={"zhangsan": set(), "lisi": set()})
    server = FakeServer(fake)
    yield fake, server.url
    server.close()


def add_account(client: TestClient, bearer: dict[str, str], channel: str, settings: dict[str, str], secret: Any) -> str:
    body = {"channel": channel, "provider": channel, "name": channel, "settings": settings, "secrets": secret}
    made = client.post("/api/v1/channels/accounts", json=body, headers=bearer)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def codes(client: TestClient, bearer: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in client.get("/api/v1/channels/codes", headers=bearer).json()}


def test_an_official_account_code_counts_who_followed_and_scanned_through_it(
    client: TestClient, db: Database, wechat: tuple[FakeWechat, str]
) -> None:
    fake, url = wechat
    a = make_actor(db, "acme")
    add_account(client, a.bearer, "wechat_oa", {"app_id": APP, "endpoint": url}, {"app_secret": "app-secret"})
    body = {"kind": "oa_qr", "name": "门店海报", "days": 7, "source": "campaign:cmp_1"}
    made = client.post("/api/v1/channels/codes", json=body, headers=a.bearer)
    assert made.status_code == 201, made.text
    code = made.json()
    [sent] = fake.qrcodes
    assert sent["action_name"] == "QR_STR_SCENE" and sent["expire_seconds"] == 7 * 86_400
    assert sent["action_info"]["scene"]["scene_str"] == code["scene"] and len(code["scene"]) == 12
    assert code["url"].startswith("http://weixin.qq.com/q/") and code["expires_at"] and not code["sandbox"]
    permanent = client.post(
        "/api/v1/channels/codes", json={"kind": "oa_qr", "name": "包裹卡", "permanent": True}, headers=a.bearer
    ).json()
    assert fake.qrcodes[1]["action_name"] == "QR_LIMIT_STR_SCENE" and "expire_seconds" not in fake.qrcodes[1]
    assert permanent["expires_at"] is None and permanent["scene"] != code["scene"]
    png = client.get(f"/api/v1/channels/codes/{code['id']}/qr", headers=a.bearer)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    svg = client.get(f"/api/v1/channels/codes/{code['id']}/qr", params={"format": "svg"}, headers=a.bearer)
    assert svg.headers["content-type"].startswith("image/svg+xml")

    connect_oa(client, a.bearer)
    assert push_oa(client, fake.scan_event(FOLLOWER, code["scene"], new_follower=True)) == 200
    assert push_oa(client, fake.scan_event(FOLLOWER, code["scene"], new_follower=True)) == 200  # WeChat's retry
    assert push_oa(client, fake.scan_event(OTHER, code["scene"], new_follower=False)) == 200
    counted = codes(client, a.bearer)
    assert (counted[code["id"]]["followed"], counted[code["id"]]["scanned"]) == (1, 1)
    assert (counted[permanent["id"]]["followed"], counted[permanent["id"]]["scanned"]) == (0, 0)
    mine = client.get("/api/v1/channels/codes", params={"source": "campaign:cmp_1"}, headers=a.bearer).json()
    assert [c["id"] for c in mine] == [code["id"]]


def test_a_wecom_contact_way_counts_who_added_through_its_state(
    client: TestClient, db: Database, wecom: tuple[FakeWecom, str]
) -> None:
    fake, url = wecom
    a = make_actor(db, "acme")
    add_account(client, a.bearer, "wecom", {"corp_id": CORP, "endpoint": url}, {"secret": "contact-secret"})
    body = {"kind": "wecom_contact", "name": "导购小张", "staff": ["zhangsan"]}
    made = client.post("/api/v1/channels/codes", json=body, headers=a.bearer)
    assert made.status_code == 201, made.text
    code = made.json()
    [way] = fake.contact_ways
    assert (way["type"], way["scene"], way["user"], way["state"]) == (1, 2, ["zhangsan"], code["scene"])
    assert len(way["state"]) <= 30 and code["url"].startswith("https://wework.qpic.cn/")
    two = client.post(
        "/api/v1/channels/codes", json={**body, "name": "导购组", "staff": ["zhangsan", "lisi"]}, headers=a.bearer
    )
    assert two.status_code == 201 and fake.contact_ways[1]["type"] == 2

    refused = client.post("/api/v1/channels/codes", json={**body, "staff": ["wangwu"]}, headers=a.bearer)
    assert refused.status_code == 502 and "60111" in refused.json()["message"]
    assert len(codes(client, a.bearer)) == 2  # nothing kept for the refused one
    empty = client.post("/api/v1/channels/codes", json={**body, "staff": []}, headers=a.bearer)
    assert empty.status_code == 422 and empty.json()["details"]["problems"][0]["where"] == "staff"

    connect_wecom(client, a.bearer)
    state = f"<State><![CDATA[{code['scene']}]]></State>"
    assert push_wecom(client, contact("add_external_contact", state)) == 200
    assert push_wecom(client, contact("add_external_contact", "<State><![CDATA[other]]></State>", 1763800100)) == 200
    assert codes(client, a.bearer)[code["id"]]["added"] == 1


def test_a_code_needs_an_account_and_a_sandbox_account_makes_one_locally(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    none = client.post("/api/v1/channels/codes", json={"kind": "oa_qr", "name": "海报"}, headers=a.bearer)
    assert none.status_code == 422 and "no enabled wechat_oa account" in none.json()["message"]
    account = {"channel": "wechat_oa", "provider": "sandbox", "name": "沙箱", "settings": {}}
    assert client.post("/api/v1/channels/accounts", json=account, headers=a.bearer).status_code == 201
    made = client.post("/api/v1/channels/codes", json={"kind": "oa_qr", "name": "海报"}, headers=a.bearer).json()
    assert made["sandbox"] and made["url"].endswith(made["scene"])
    other = make_actor(db, "other")
    assert client.get(f"/api/v1/channels/codes/{made['id']}/qr", headers=other.bearer).status_code == 404
    assert client.get("/api/v1/channels/codes", headers=other.bearer).json() == []
