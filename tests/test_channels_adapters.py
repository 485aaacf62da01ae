"""WeChat official account, mini-program, WeCom, JPush and webhook adapters, each against a
local fake that checks credentials and answers as the provider does, errors included."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from siyu.channels.adapters.base import MemoryTokenStore, ProviderAccount
from siyu.channels.adapters.jpush import JPushAdapter, basic_auth
from siyu.channels.adapters.miniprogram import MiniprogramAdapter, check_value
from siyu.channels.adapters.webhook import WebhookAdapter
from siyu.channels.adapters.wechat_oa import WechatTemplateAdapter
from siyu.channels.adapters.wecom import WecomAdapter
from siyu.channels.contracts import (
    ChannelKind,
    Content,
    MessageKind,
    OutboundMessage,
    PermanentFailure,
    RetryableFailure,
    Sent,
)
from tests.fakes.jpush import FakeJPush
from tests.fakes.server import FakeServer
from tests.fakes.webhook import FakeWebhookReceiver
from tests.fakes.wechat import FakeWechat
from tests.fakes.wecom import FakeWecom

APP_ID = "wx1234567890abcdef"
FOLLOWER = "oia2TjuEGTNoeX76QEjQNrcURxG8"
BLOCKER = "oia2TjuEGTNoeX76QEjQNrcURxG9"
STRANGER = "oia2TjuEGTNoeX76QEjQNrcURxG0"


def message(i: int, channel: ChannelKind, to: str, **content: Any) -> OutboundMessage:
    return OutboundMessage(
        id=f"msg_{i:03d}", workspace_id="ws_1", channel=channel, kind=MessageKind.TRANSACTIONAL, to=to,
        content=Content(**content),
    )  # fmt: skip


def account(provider: str, settings: dict[str, str], secrets: dict[str, str]) -> ProviderAccount:
    return ProviderAccount(
        id=f"chn_{provider}", workspace_id="ws_1", provider=provider, settings=settings, secrets=secrets
    )


@pytest.fixture
def wechat() -> Iterator[tuple[FakeWechat, str]]:
    fake = FakeWechat(APP_ID, "app-secret", templates={"TPL_ORDER"}, followers={FOLLOWER, BLOCKER}, blocked={BLOCKER})
    server = FakeServer(fake)
    yield fake, server.url
    server.close()


def test_oa_template_messages_with_token_refresh_and_errors(wechat) -> None:
    fake, url = wechat
    tokens = MemoryTokenStore()
    adapter = WechatTemplateAdapter(
        account("wechat_oa", {"app_id": APP_ID, "endpoint": url}, {"app_secret": "app-secret"}), tokens
    )
    fields = {"thing2": "巧克力", "amount3": "39.80元"}
    [ok] = adapter.send(
        [message(1, ChannelKind.WECHAT_OA, FOLLOWER, template="TPL_ORDER", fields=fields, link="https://b.example/o/1")]
    )
    assert isinstance(ok, Sent) and ok.provider_id == str(fake.sent[0].msgid)
    assert fake.sent[0].data == {"thing2": {"value": "巧克力"}, "amount3": {"value": "39.80元"}}
    assert (fake.sent[0].client_msg_id, fake.sent[0].url) == ("msg_001", "https://b.example/o/1")
    # A repeat of the same message (a retry after a lost answer) is sent once.
    [again] = adapter.send([message(1, ChannelKind.WECHAT_OA, FOLLOWER, template="TPL_ORDER", fields=fields)])
    assert isinstance(again, Sent) and again.provider_id == ok.provider_id and len(fake.sent) == 1
    # The token expires: the adapter fetches another and the send goes through.
    fake.expire_tokens()
    [after] = adapter.send([message(2, ChannelKind.WECHAT_OA, FOLLOWER, template="TPL_ORDER", fields=fields)])
    assert isinstance(after, Sent) and fake.token_fetches == 2
    blocked, stranger, bad_template, empty = adapter.send(
        [
            message(3, ChannelKind.WECHAT_OA, BLOCKER, template="TPL_ORDER", fields=fields),
            message(4, ChannelKind.WECHAT_OA, STRANGER, template="TPL_ORDER", fields=fields),
            message(5, ChannelKind.WECHAT_OA, FOLLOWER, template="NOPE", fields=fields),
            message(6, ChannelKind.WECHAT_OA, FOLLOWER, template="TPL_ORDER", fields={"thing2": ""}),
        ]
    )
    assert isinstance(blocked, PermanentFailure) and blocked.code == "43019" and blocked.suppress
    assert isinstance(stranger, PermanentFailure) and stranger.code == "43004" and not stranger.suppress
    assert isinstance(bad_template, PermanentFailure) and bad_template.code == "40037"
    assert isinstance(empty, PermanentFailure) and empty.code == "47003"
    wrong = WechatTemplateAdapter(
        account("wechat_oa", {"app_id": APP_ID, "endpoint": url}, {"app_secret": "nope"}), MemoryTokenStore()
    )
    [refused] = wrong.send([message(7, ChannelKind.WECHAT_OA, FOLLOWER, template="TPL_ORDER", fields=fields)])
    assert isinstance(refused, PermanentFailure) and refused.code == "40125"


def test_miniprogram_subscribe_messages_spend_one_acceptance_each(wechat) -> None:
    fake, url = wechat
    fake.acceptances[(FOLLOWER, "TPL_ORDER")] = 1
    adapter = MiniprogramAdapter(
        account("miniprogram", {"app_id": APP_ID, "endpoint": url}, {"app_secret": "app-secret"}), MemoryTokenStore()
    )
    fields = {"thing1": "您的订单已发货", "character_string2": "SF1234567890"}
    first, second = adapter.send(
        [
            message(1, ChannelKind.MINIPROGRAM, FOLLOWER, template="TPL_ORDER", fields=fields, link="pages/order?id=1"),
            message(2, ChannelKind.MINIPROGRAM, FOLLOWER, template="TPL_ORDER", fields=fields),
        ]
    )
    assert isinstance(first, Sent) and fake.subscribe_sent[0]["page"] == "pages/order?id=1"
    assert isinstance(second, PermanentFailure) and second.code == "43101"
    [too_long] = adapter.send(
        [message(3, ChannelKind.MINIPROGRAM, FOLLOWER, template="TPL_ORDER", fields={"thing1": "长" * 21})]
    )
    assert isinstance(too_long, PermanentFailure) and too_long.code == "47003"
    assert len(fake.subscribe_sent) == 1  # refused before it left
    assert check_value("phrase3", "已发货") is None and check_value("phrase3", "shipped") is not None
    assert check_value("name1", "王小明") is None and check_value("name1", "王" * 11) is not None


@pytest.fixture
def wecom() -> Iterator[tuple[FakeWecom, WecomAdapter]]:
    fake = FakeWecom("ww1234567890abcdef", "contact-secret", customers={"zhangsan": {"wmA", "wmB"}}, tags={"etTAG1"})
    server = FakeServer(fake)
    adapter = WecomAdapter(
        account("wecom", {"corp_id": "ww1234567890abcdef", "endpoint": server.url}, {"secret": "contact-secret"}),
        MemoryTokenStore(),
    )
    yield fake, adapter
    server.close()


def test_wecom_welcome_message_goes_once_within_twenty_seconds(wecom) -> None:
    fake, adapter = wecom
    code = fake.issue_welcome_code()
    welcome = {
        "welcome_code": code,
        "welcome_deadline": time.time() + 20,
        "attachments": [{"msgtype": "link", "link": {"title": "入会礼", "url": "https://b.example/j"}}],
    }
    [ok] = adapter.send([message(1, ChannelKind.WECOM, "wmA", text="欢迎加入！", extra=welcome)])
    assert isinstance(ok, Sent) and fake.welcomes[0]["text"]["content"] == "欢迎加入！"
    [twice] = adapter.send([message(2, ChannelKind.WECOM, "wmA", text="欢迎加入！", extra=welcome)])
    assert isinstance(twice, PermanentFailure) and twice.code == "41051"
    stale = {"welcome_code": fake.issue_welcome_code(issued_at=time.time() - 30), "welcome_deadline": time.time() - 10}
    [late] = adapter.send([message(3, ChannelKind.WECOM, "wmB", text="欢迎", extra=stale)])
    assert isinstance(late, PermanentFailure) and late.code == "welcome_code_expired"
    assert len(fake.welcomes) == 1


def test_wecom_mass_send_task_and_mark_tag(wecom) -> None:
    fake, adapter = wecom
    mass = {"mode": "mass", "sender": "zhangsan"}
    outcomes = adapter.send(
        [
            message(i, ChannelKind.WECOM, to, text="双11 专属福利", extra=mass)
            for i, to in enumerate(["wmA", "wmB", "wmZ"])
        ]
    )
    assert [type(o) for o in outcomes] == [Sent, Sent, PermanentFailure]
    [task] = fake.tasks
    assert task["external_userid"] == ["wmA", "wmB", "wmZ"] and task["sender"] == "zhangsan"
    assert isinstance(outcomes[0], Sent) and outcomes[0].provider_id == task["msgid"]
    tag = {"mode": "mark_tag", "userid": "zhangsan", "add_tag": ["etTAG1"]}
    ok, stranger, unknown = adapter.send(
        [
            message(5, ChannelKind.WECOM, "wmA", extra=tag),
            message(6, ChannelKind.WECOM, "wmZ", extra=tag),
            message(7, ChannelKind.WECOM, "wmA", extra={**tag, "add_tag": ["nope"]}),
        ]
    )
    assert isinstance(ok, Sent) and fake.tagged == [
        {"userid": "zhangsan", "external_userid": "wmA", "add_tag": ["etTAG1"], "remove_tag": []}
    ]
    assert isinstance(stranger, PermanentFailure) and stranger.code == "84061"
    assert isinstance(unknown, PermanentFailure) and unknown.code == "40068"


def test_jpush_pushes_in_batches_with_basic_auth() -> None:
    assert basic_auth("7d431e42dfa6a6d693ac2d04", "5e987ac6d2e04d95a9d8f0d1") == (
        "Basic N2Q0MzFlNDJkZmE2YTZkNjkzYWMyZDA0OjVlOTg3YWM2ZDJlMDRkOTVhOWQ4ZjBkMQ=="
    )
    fake = FakeJPush("appkey", "master", devices={"160a3797c8" + str(i) for i in range(3)})
    server = FakeServer(fake)
    try:
        adapter = JPushAdapter(
            account("jpush", {"app_key": "appkey", "endpoint": server.url}, {"master_secret": "master"})
        )
        sent = adapter.send(
            [
                message(i, ChannelKind.APP_PUSH, f"160a3797c8{i}", text="您的包裹已签收", subject="物流")
                for i in range(3)
            ]
        )
        assert all(isinstance(o, Sent) for o in sent) and len(fake.pushes) == 1
        assert fake.pushes[0]["audience"] == {"registration_id": ["160a3797c80", "160a3797c81", "160a3797c82"]}
        [unknown] = adapter.send([message(9, ChannelKind.APP_PUSH, "nobody", text="hi")])
        assert isinstance(unknown, PermanentFailure) and unknown.code == "1011"
        fake.limited = 1
        [limited] = adapter.send([message(10, ChannelKind.APP_PUSH, "160a3797c80", text="hi")])
        assert isinstance(limited, RetryableFailure) and limited.code == "2002"
        forged = JPushAdapter(account("jpush", {"app_key": "appkey", "endpoint": server.url}, {"master_secret": "x"}))
        [refused] = forged.send([message(11, ChannelKind.APP_PUSH, "160a3797c80", text="hi")])
        assert isinstance(refused, PermanentFailure) and refused.code == "1004"
    finally:
        server.close()


def test_webhook_is_signed_and_its_answers_map_to_outcomes() -> None:
    receiver = FakeWebhookReceiver("whsec_123")
    server = FakeServer(receiver)
    try:
        adapter = WebhookAdapter(
            account("webhook", {"url": server.url + "/hooks/siyu"}, {"signing_secret": "whsec_123"})
        )
        [ok] = adapter.send([message(1, ChannelKind.WEBHOOK, "pf_1", text="order shipped", fields={"order": "A1"})])
        assert isinstance(ok, Sent) and ok.provider_id == "req-1"
        assert receiver.received[0]["id"] == "msg_001" and receiver.received[0]["content"]["fields"] == {"order": "A1"}
        receiver.answers = [503, 400]
        down, bad = adapter.send(
            [message(2, ChannelKind.WEBHOOK, "pf_1", text="x"), message(3, ChannelKind.WEBHOOK, "pf_1", text="x")]
        )
        assert isinstance(down, RetryableFailure) and down.retry_after == 7
        assert isinstance(bad, PermanentFailure) and bad.code == "http_400"
        forged = WebhookAdapter(account("webhook", {"url": server.url}, {"signing_secret": "wrong"}))
        [refused] = forged.send([message(4, ChannelKind.WEBHOOK, "pf_1", text="x")])
        assert isinstance(refused, PermanentFailure) and receiver.forged == 1
    finally:
        server.close()
