"""Tencent Cloud SMS (API 3.0, version 2021-01-11): SendSms to up to 200 numbers that share a
template and its variables, signed with TC3-HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

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

ENDPOINT = "https://sms.tencentcloudapi.com"
HOST = "sms.tencentcloudapi.com"
SERVICE = "sms"
VERSION = "2021-01-11"
CONTENT_TYPE = "application/json; charset=utf-8"
BATCH_LIMIT = 200

_RETRY_AFTER: dict[str, float] = {
    "LimitExceeded.DeliveryFrequencyLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": 3600.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.AppDailyLimit": 3600.0,
    "LimitExceeded.AppGlobalDailyLimit": 3600.0,
    "RequestLimitExceeded": 1.0,
    "FailedOperation.InsufficientBalanceInSmsPackage": 3600.0,
}
_SUPPRESS = frozenset({"FailedOperation.PhoneNumberInBlacklist", "FailedOperation.PhoneNumberOnBlacklist"})


def tc3_signature(
    secret_key: str, *, service: str, host: str, timestamp: int, payload: bytes, content_type: str = CONTENT_TYPE
) -> str:
    """Hex signature of a POST request as TC3-HMAC-SHA256 defines it (signed headers
    ``content-type;host``; the credential date is the UTC date of the timestamp)."""
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            f"{date}/{service}/tc3_request",
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )

    def _hmac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    signing = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    return hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(secret_id: str, signature: str, *, service: str, timestamp: int) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


def classify(code: str, message: str) -> Outcome:
    if code in _RETRY_AFTER:
        return RetryableFailure(code, message, _RETRY_AFTER[code])
    if code.startswith(("InternalError", "LimitExceeded")):
        return RetryableFailure(code, message, 30.0)
    return PermanentFailure(code, message, suppress=code in _SUPPRESS)


class TencentSmsAdapter:
    provider: ClassVar[str] = "tencent_sms"
    channel: ClassVar[ChannelKind] = ChannelKind.SMS
    batch_size: ClassVar[int] = BATCH_LIMIT

    def __init__(self, account: ProviderAccount, client: httpx.Client | None = None) -> None:
        self.account = account
        self.client = client or http_client(account, ENDPOINT)

    def send(self, messages: Sequence[OutboundMessage]) -> list[Outcome]:
        outcomes: dict[str, Outcome] = {}
        groups: dict[tuple[str, str, tuple[str, ...]], list[OutboundMessage]] = {}
        for m in messages:
            if not m.content.template:
                outcomes[m.id] = PermanentFailure(
                    "no_template", "Tencent SMS sends approved templates only: no TemplateId"
                )
                continue
            key = (m.content.template, self._sign_name(m), _positional(m.content.fields))
            groups.setdefault(key, []).append(m)
        for (template, sign_name, params), group in groups.items():
            for start in range(0, len(group), BATCH_LIMIT):
                chunk = group[start : start + BATCH_LIMIT]
                outcomes.update(self._send(template, sign_name, params, chunk))
        return [outcomes[m.id] for m in messages]

    def _sign_name(self, m: OutboundMessage) -> str:
        return str(m.content.extra.get("sign_name") or self.account.setting("sign_name"))

    def _send(
        self, template: str, sign_name: str, params: tuple[str, ...], chunk: Sequence[OutboundMessage]
    ) -> dict[str, Outcome]:
        body = {
            "PhoneNumberSet": [m.to for m in chunk],
            "SmsSdkAppId": self.account.setting("sdk_app_id"),
            "TemplateId": template,
            "SignName": sign_name,
            "TemplateParamSet": list(params),
            "SessionContext": chunk[0].id if len(chunk) == 1 else "",
        }
        payload = json.dumps(body, ensure_ascii=False).encode()
        answer = self._call(payload)
        if not isinstance(answer, dict):
            return {m.id: answer for m in chunk}
        by_number: dict[str, dict[str, Any]] = {}
        for status in answer.get("SendStatusSet") or []:
            by_number[str(status.get("PhoneNumber", ""))] = status
        outcomes: dict[str, Outcome] = {}
        for m in chunk:
            status = by_number.get(m.to)
            if status is None:
                outcomes[m.id] = RetryableFailure("no_status", "the answer had no status for this number")
            elif status.get("Code") == "Ok":
                outcomes[m.id] = Sent(provider_id=str(status.get("SerialNo", "")), parts=int(status.get("Fee") or 1))
            else:
                outcomes[m.id] = classify(str(status.get("Code")), str(status.get("Message", "")))
        return outcomes

    def _call(self, payload: bytes) -> dict[str, Any] | Outcome:
        timestamp = int(time.time())
        host = self.account.setting("host", HOST)
        signature = tc3_signature(
            self.account.secrets.get("secret_key", ""), service=SERVICE, host=host, timestamp=timestamp, payload=payload
        )
        headers = {
            "Authorization": authorization(
                self.account.secrets.get("secret_id", ""), signature, service=SERVICE, timestamp=timestamp
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": VERSION,
            "X-TC-Region": self.account.setting("region", "ap-guangzhou"),
            "X-TC-Timestamp": str(timestamp),
        }
        try:
            response = self.client.post("/", content=payload, headers=headers)
        except httpx.HTTPError as exc:
            return network_failure(exc)
        try:
            result = response.json().get("Response")
        except (ValueError, AttributeError):
            return http_failure(response)
        if not isinstance(result, dict):
            return http_failure(response)
        error = result.get("Error")
        if isinstance(error, dict):
            return classify(str(error.get("Code", "")), str(error.get("Message", "")))
        return result


def _positional(fields: dict[str, str]) -> tuple[str, ...]:
    """Tencent templates number their variables {1}, {2}…: the values in that order."""
    return tuple(fields[k] for k in sorted(fields, key=lambda k: int(k) if k.isdigit() else 10**6))
