"""A generic webhook: each message POSTed as JSON to the account's URL, signed so the receiver
can tell it came from siyu: ``X-Siyu-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the account's signing secret>``."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import ClassVar

import httpx

from siyu.channels.adapters.base import HTTP_TIMEOUT_SECONDS, ProviderAccount, network_failure
from siyu.channels.contracts import ChannelKind, OutboundMessage, Outcome, PermanentFailure, RetryableFailure, Sent

SIGNATURE_HEADER = "X-Siyu-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookAdapter:
    provider: ClassVar[str] = "webhook"
    channel: ClassVar[ChannelKind] = ChannelKind.WEBHOOK
    batch_size: ClassVar[int] = 50

    def __init__(self, account: ProviderAccount, client: httpx.Client | None = None) -> None:
        self.account = account
        self.client = client or httpx.Client(timeout=HTTP_TIMEOUT_SECONDS)

    def send(self, messages: Sequence[OutboundMessage]) -> list[Outcome]:
        return [self._one(m) for m in messages]

    def _one(self, m: OutboundMessage) -> Outcome:
        url = self.account.setting("url") or m.to
        body = json.dumps(
            {
                "id": m.id,
                "channel": m.channel.value,
                "kind": m.kind.value,
                "to": m.to,
                "profile_id": m.profile_id,
                "content": {k: v for k, v in dataclasses.asdict(m.content).items() if v},
            },
            ensure_ascii=False,
        ).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Siyu-Message-Id": m.id,
            SIGNATURE_HEADER: sign(self.account.secrets.get("signing_secret", ""), int(time.time()), body),
        }
        try:
            response = self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return network_failure(exc)
        if 200 <= response.status_code < 300:
            return Sent(provider_id=response.headers.get("X-Request-Id", ""))
        reason = response.text[:200] or response.reason_phrase
        if response.status_code in (408, 425, 429) or response.status_code >= 500:
            retry_after = response.headers.get("Retry-After", "")
            return RetryableFailure(
                f"http_{response.status_code}", reason, float(retry_after) if retry_after.isdigit() else None
            )
        return PermanentFailure(f"http_{response.status_code}", reason)
