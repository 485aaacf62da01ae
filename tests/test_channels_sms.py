"""SMS adapters against fakes that check signatures and answer as Aliyun and Tencent do."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator

import pytest

from siyu.channels.adapters.aliyun_sms import AliyunSmsAdapter, rpc_signature
from siyu.channels.adapters.base import ProviderAccount
from siyu.channels.adapters.tencent_sms import TencentSmsAdapter, tc3_signature
from siyu.channels.contracts import (
    ChannelKind,
    Content,
    MessageKind,
    OutboundMessage,
    PermanentFailure,
    RetryableFailure,
    Sent,
)
from tests.fakes.aliyun_sms import FakeAliyunSms
from tests.fakes.server import FakeServer
from tests.fakes.tencent_sms import FakeTencentSms

ALIYUN_TEMPLATES = {"SMS_1001": "亲爱的会员${name}，您的积分${points}即将到期。拒收请回复R"}
TENCENT_TEMPLATES = {"1001": "亲爱的会员{1}，您的积分{2}即将到期。拒收请回复R", "1002": "您的订单已发货"}


def sms(i: int, to: str, template: str, fields: dict[str, str]) -> OutboundMessage:
    return OutboundMessage(
        id=f"msg_{i:04d}",
        workspace_id="ws_1",
        channel=ChannelKind.SMS,
        kind=MessageKind.MARKETING,
        to=to,
        content=Content(template=template, fields=fields),
    )


# Signature vectors from the providers' documentation and SDKs (see specs/channels.md §4).


def test_aliyun_signature_matches_the_published_vector() -> None:
    params = {
        "TimeStamp": "2016-02-23T12:46:24Z",
        "Format": "XML",
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "Version": "2014-05-26",
        "SignatureVersion": "1.0",
    }
    assert rpc_signature("GET", params, "testsecret") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="
    params["Timestamp"] = params.pop("TimeStamp")
    assert rpc_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    raw = base64.b64encode(hmac.new(b"secret", b"source", hashlib.sha1).digest()).decode()
    assert raw == "Jv4yi8SobFhg5t1C7nWLbhBSFZQ="


def test_tc3_signature_matches_the_published_vector() -> None:
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    signature = tc3_signature(
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        service="cvm",
        host="cvm.tencentcloudapi.com",
        timestamp=1551113065,
        payload=payload,
    )
    assert signature == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


# Aliyun


@pytest.fixture
def aliyun() -> Iterator[tuple[FakeAliyunSms, AliyunSmsAdapter]]:
    fake = FakeAliyunSms("LTAI5tTestKey", "aliyun-secret", ALIYUN_TEMPLATES)
    server = FakeServer(fake)
    account = ProviderAccount(
        id="chn_1",
        workspace_id="ws_1",
        provider="aliyun_sms",
        settings={"endpoint": server.url, "sign_name": "私域美妆"},
        secrets={"access_key_id": "LTAI5tTestKey", "access_key_secret": "aliyun-secret"},
    )
    yield fake, AliyunSmsAdapter(account)
    server.close()


def test_aliyun_sends_one_sms_and_the_provider_sees_the_signed_request(aliyun) -> None:
    fake, adapter = aliyun
    [outcome] = adapter.send([sms(1, "+8613800138000", "SMS_1001", {"name": "王", "points": "300"})])
    assert isinstance(outcome, Sent) and outcome.provider_id
    [sent] = fake.sent
    assert (sent.phone, sent.out_id, sent.biz_id) == ("13800138000", "msg_0001", outcome.provider_id)
    assert sent.text == "【私域美妆】亲爱的会员王，您的积分300即将到期。拒收请回复R"


def test_aliyun_sends_many_numbers_in_one_batch_request(aliyun) -> None:
    fake, adapter = aliyun
    messages = [sms(i, f"+861380013800{i}", "SMS_1001", {"name": f"n{i}", "points": str(i)}) for i in range(5)]
    outcomes = adapter.send(messages)
    assert all(isinstance(o, Sent) for o in outcomes)
    assert fake.requests == 1
    assert [s.phone for s in fake.sent] == [f"1380013800{i}" for i in range(5)]
    assert [s.params["name"] for s in fake.sent] == [f"n{i}" for i in range(5)]


def test_aliyun_errors_become_outcomes(aliyun) -> None:
    fake, adapter = aliyun
    [bad_number] = adapter.send([sms(1, "+8612345", "SMS_1001", {"name": "a", "points": "1"})])
    assert isinstance(bad_number, PermanentFailure) and bad_number.code == "isv.MOBILE_NUMBER_ILLEGAL"
    [missing] = adapter.send([sms(2, "+8613800138000", "SMS_1001", {"name": "a"})])
    assert isinstance(missing, PermanentFailure) and missing.code == "isv.TEMPLATE_MISSING_PARAMETERS"
    [no_template] = adapter.send([sms(3, "+8613800138000", "", {})])
    assert isinstance(no_template, PermanentFailure) and no_template.code == "no_template"
    fake.fail_next = [(503, "ServiceUnavailable"), (200, "isp.SYSTEM_ERROR"), (200, "isv.DAY_LIMIT_CONTROL")]
    outcomes = [adapter.send([sms(4, "+8613800138000", "SMS_1001", {"name": "a", "points": "1"})])[0] for _ in range(3)]
    assert [type(o) for o in outcomes] == [RetryableFailure] * 3
    assert [o.code for o in outcomes if isinstance(o, RetryableFailure)] == [
        "ServiceUnavailable",
        "isp.SYSTEM_ERROR",
        "isv.DAY_LIMIT_CONTROL",
    ]
    assert not fake.sent


def test_aliyun_daily_cap_per_number_is_retried_later(aliyun) -> None:
    _fake, adapter = aliyun
    for i in range(50):
        assert isinstance(adapter.send([sms(i, "+8613800138000", "SMS_1001", {"name": "a", "points": "1"})])[0], Sent)
    [capped] = adapter.send([sms(99, "+8613800138000", "SMS_1001", {"name": "a", "points": "1"})])
    assert isinstance(capped, RetryableFailure) and capped.code == "isv.BUSINESS_LIMIT_CONTROL"


def test_aliyun_refuses_a_wrong_secret_and_the_network_failing_is_retryable(aliyun) -> None:
    fake, adapter = aliyun
    forged = AliyunSmsAdapter(
        ProviderAccount(
            id="chn_1",
            workspace_id="ws_1",
            provider="aliyun_sms",
            settings=adapter.account.settings,
            secrets={"access_key_id": "LTAI5tTestKey", "access_key_secret": "wrong"},
        )
    )
    [refused] = forged.send([sms(1, "+8613800138000", "SMS_1001", {"name": "a", "points": "1"})])
    assert isinstance(refused, PermanentFailure) and refused.code == "SignatureDoesNotMatch"
    offline = AliyunSmsAdapter(
        ProviderAccount(
            id="chn_1", workspace_id="ws_1", provider="aliyun_sms", settings={"endpoint": "http://127.0.0.1:9"}
        )
    )
    [down] = offline.send([sms(1, "+8613800138000", "SMS_1001", {"name": "a", "points": "1"})])
    assert isinstance(down, RetryableFailure) and down.code == "network"
    assert not fake.sent


# Tencent


@pytest.fixture
def tencent() -> Iterator[tuple[FakeTencentSms, TencentSmsAdapter]]:
    fake = FakeTencentSms("AKIDtest", "tencent-secret", "1400006666", TENCENT_TEMPLATES)
    server = FakeServer(fake)
    host = server.url.removeprefix("http://")
    account = ProviderAccount(
        id="chn_2",
        workspace_id="ws_1",
        provider="tencent_sms",
        settings={"endpoint": server.url, "host": host, "sdk_app_id": "1400006666", "sign_name": "私域美妆"},
        secrets={"secret_id": "AKIDtest", "secret_key": "tencent-secret"},
    )
    yield fake, TencentSmsAdapter(account)
    server.close()


def test_tencent_sends_and_reports_each_number(tencent) -> None:
    fake, adapter = tencent
    fake.blacklist.add("+8613900139000")
    outcomes = adapter.send(
        [
            sms(1, "+8613800138000", "1001", {"1": "王", "2": "300"}),
            sms(2, "+8613900139000", "1002", {}),
            sms(3, "+8613700137000", "1002", {}),
            sms(4, "+86123", "1002", {}),
        ]
    )
    first, blocked, third, bad = outcomes
    assert isinstance(first, Sent) and first.provider_id == fake.sent[0].serial_no
    assert fake.sent[0].text == "【私域美妆】亲爱的会员王，您的积分300即将到期。拒收请回复R"
    assert fake.sent[0].session_context == "msg_0001"
    assert isinstance(blocked, PermanentFailure) and blocked.suppress
    assert isinstance(third, Sent)
    assert isinstance(bad, PermanentFailure) and bad.code == "InvalidParameterValue.IncorrectPhoneNumber"


def test_tencent_request_errors_become_outcomes(tencent) -> None:
    fake, adapter = tencent
    fake.fail_next = ["InternalError.Timeout", "RequestLimitExceeded"]
    for expected in ("InternalError.Timeout", "RequestLimitExceeded"):
        [o] = adapter.send([sms(1, "+8613800138000", "1002", {})])
        assert isinstance(o, RetryableFailure) and o.code == expected
    forged = TencentSmsAdapter(
        ProviderAccount(
            id="chn_2",
            workspace_id="ws_1",
            provider="tencent_sms",
            settings=adapter.account.settings,
            secrets={"secret_id": "AKIDtest", "secret_key": "nope"},
        )
    )
    [o] = forged.send([sms(1, "+8613800138000", "1002", {})])
    assert isinstance(o, PermanentFailure) and o.code == "AuthFailure.SignatureFailure"
    assert not fake.sent
