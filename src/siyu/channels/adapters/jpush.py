"""JPush (极光推送) REST v3: POST /v3/push with Basic auth (appKey:masterSecret), to registration
ids or aliases; messages with the same notification go in one push of up to 1000."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from siyu.channels.adapters.base import ProviderAccount, http_client, http_failure, network_failure
from siyu.channels.contracts import ChannelKind, OutboundMessage, Outcome, PermanentFailure, RetryableFailure, Sent

ENDPOINT = "https://api.jpush.cn"
AUDIENCE_LIMIT = 1000
# JPush error codes worth another try: server error, busy, rate limit.
_RETRY = {1000: 30.0, 1030: 30.0, 2002: 60.0, 2003: 60.0}


def basic_auth(app_key: str, master_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{app_key}:{master_secret}".encode()).decode()


class JPushAdapter:
    provider: ClassVar[str] = "jpush"
    channel: ClassVar[ChannelKind] = ChannelKind.APP_PUSH
    batch_size: ClassVar[int] = AUDIENCE_LIMIT

    def __init__(self, account: ProviderAccount, client: httpx.Client | None = None) -> None:
        self.account = account
        self.client = client or http_client(account, ENDPOINT)
        self.auth = basic_auth(account.setting("app_key"), account.secrets.get("master_secret", ""))

    def send(self, messages: Sequence[OutboundMessage]) -> list[Outcome]:
        groups: dict[tuple[str, str, str], list[OutboundMessage]] = {}
        for m in messages:
            groups.setdefault((m.content.subject, m.content.text, m.content.link), []).append(m)
        outcomes: dict[str, Outcome] = {}
        for (title, text, link), group in groups.items():
            for start in range(0, len(group), AUDIENCE_LIMIT):
                chunk = group[start : start + AUDIENCE_LIMIT]
                answer = self._push(title, text, link, chunk)
                outcomes.update({m.id: answer for m in chunk})
        return [outcomes[m.id] for m in messages]

    def _push(self, title: str, text: str, link: str, chunk: Sequence[OutboundMessage]) -> Outcome:
        if not text:
            return PermanentFailure("empty", "a push needs its text")
        audience_kind = "alias" if self.account.setting("audience", "registration_id") == "alias" else "registration_id"
        extras = {"link": link} if link else {}
        body: dict[str, Any] = {
            "platform": "all",
            "audience": {audience_kind: [m.to for m in chunk]},
            "notification": {
                "alert": text,
                "android": {"alert": text, "title": title, "extras": extras},
                "ios": {"alert": text, "sound": "default", "badge": "+1", "extras": extras},
            },
            "options": {
                "time_to_live": 86400,
                "apns_production": self.account.setting("apns_production", "true") == "true",
            },
        }
        try:
            response = self.client.post("/v3/push", json=body, headers={"Authorization": self.auth})
        except httpx.HTTPError as exc:
            return network_failure(exc)
        try:
            answer = response.json()
        except ValueError:
            return http_failure(response)
        if response.status_code == 200 and answer.get("msg_id"):
            return Sent(provider_id=str(answer["msg_id"]))
        error = answer.get("error") or {}
        code = int(error.get("code", 0) or 0)
        message = str(error.get("message", response.reason_phrase))
        if code in _RETRY or response.status_code >= 500:
            return RetryableFailure(str(code or response.status_code), message, _RETRY.get(code, 30.0))
        return PermanentFailure(str(code or response.status_code), message)
