"""Alibaba Cloud SMS (Dysmsapi 2017-05-25): SendSms for one number, SendBatchSms for up to 100
numbers with a template, each with its own variables. RPC style with signature v1
(HMAC-SHA1 over the sorted, percent-encoded parameters)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import quote

import httpx

from siyu.channels.adapters.base import ProviderAccount, http_client, http_failure, network_failure
from siyu.channels.contracts import (
    ChannelKind,
    OutboundMessage,
    Outcome,
    PermanentFailure,
    RetryableFailure,
    Sent,
)

ENDPOINT = "https://dysmsapi.aliyuncs.com"
VERSION = "2017-05-25"
BATCH_LIMIT = 100

# Codes after which the same message may go through later: flow control and quotas reset,
# a provider-side error passes. Every other isv.* code is the request's own fault.
_RETRY_AFTER: dict[str, float] = {
    "isv.BUSINESS_LIMIT_CONTROL": 60.0,
    "isv.DAY_LIMIT_CONTROL": 3600.0,
    "isv.MONTH_LIMIT_CONTROL": 3600.0,
    "isv.OUT_OF_SERVICE": 3600.0,
    "isv.AMOUNT_NOT_ENOUGH": 3600.0,
    "Throttling.User": 1.0,
    "Throttling": 1.0,
    "ServiceUnavailable": 30.0,
}
# Codes that mean this number will not take our SMS: suppress it for the channel.
_SUPPRESS = frozenset({"isv.BLACK_KEY_CONTROL_LIMIT", "isv.SMS_BLACKLIST"})


def percent_encode(value: str) -> str:
    """RFC 3986 as Aliyun signs: unreserved characters kept, space as %20, * as %2A."""
    return quote(value, safe="-_.~")


def rpc_signature(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{access_key_secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def national_number(address: str) -> str:
    """Aliyun's domestic API takes the 11 digits of a mainland number."""
    return address[3:] if address.startswith("+86") else address.lstrip("+")


def classify(code: str, message: str) -> Outcome:
    if code in _RETRY_AFTER:
        return RetryableFailure(code, message, _RETRY_AFTER[code])
    if code.startswith("isp.") and code != "isp.RAM_PERMISSION_DENY":
        return RetryableFailure(code, message, 30.0)
    return PermanentFailure(code, message, suppress=code in _SUPPRESS)


class AliyunSmsAdapter:
    provider: ClassVar[str] = "aliyun_sms"
    channel: ClassVar[ChannelKind] = ChannelKind.SMS
    batch_size: ClassVar[int] = BATCH_LIMIT

    def __init__(self, account: ProviderAccount, client: httpx.Client | None = None) -> None:
        self.account = account
        self.client = client or http_client(account, ENDPOINT)

    def send(self, messages: Sequence[OutboundMessage]) -> list[Outcome]:
        outcomes: dict[str, Outcome] = {}
        by_template: dict[str, list[OutboundMessage]] = {}
        for m in messages:
            if not m.content.template:
                outcomes[m.id] = PermanentFailure(
                    "no_template", "Aliyun SMS sends approved templates only: no TemplateCode"
                )
            else:
                by_template.setdefault(m.content.template, []).append(m)
        for template, group in by_template.items():
            for start in range(0, len(group), BATCH_LIMIT):
                chunk = group[start : start + BATCH_LIMIT]
                answers = self._send_one(chunk[0]) if len(chunk) == 1 else self._send_batch(template, chunk)
                outcomes.update(zip((m.id for m in chunk), answers, strict=True))
        return [outcomes[m.id] for m in messages]

    def _sign_name(self, m: OutboundMessage) -> str:
        return str(m.content.extra.get("sign_name") or self.account.setting("sign_name"))

    def _send_one(self, m: OutboundMessage) -> list[Outcome]:
        params = {
            "Action": "SendSms",
            "PhoneNumbers": national_number(m.to),
            "SignName": self._sign_name(m),
            "TemplateCode": m.content.template,
            "TemplateParam": json.dumps(m.content.fields, ensure_ascii=False),
            "OutId": m.id,
        }
        return [self._call(params)]

    def _send_batch(self, template: str, chunk: Sequence[OutboundMessage]) -> list[Outcome]:
        params = {
            "Action": "SendBatchSms",
            "PhoneNumberJson": json.dumps([national_number(m.to) for m in chunk]),
            "SignNameJson": json.dumps([self._sign_name(m) for m in chunk], ensure_ascii=False),
            "TemplateCode": template,
            "TemplateParamJson": json.dumps([m.content.fields for m in chunk], ensure_ascii=False),
            "OutId": chunk[0].id,
        }
        # One answer for the whole request: every number shares it, and receipts name the number.
        return [self._call(params)] * len(chunk)

    def _call(self, business: dict[str, str]) -> Outcome:
        params = {
            "AccessKeyId": self.account.secrets.get("access_key_id", ""),
            "Format": "JSON",
            "RegionId": self.account.setting("region", "cn-hangzhou"),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": VERSION,
            **business,
        }
        params["Signature"] = rpc_signature("POST", params, self.account.secrets.get("access_key_secret", ""))
        try:
            response = self.client.post("/", data=params)
        except httpx.HTTPError as exc:
            return network_failure(exc)
        try:
            body = response.json()
        except ValueError:
            return http_failure(response)
        code = str(body.get("Code", ""))
        if code == "OK":
            return Sent(provider_id=str(body.get("BizId", "")))
        if not code:
            return http_failure(response)
        return classify(code, str(body.get("Message", "")))
