"""WeCom customer contact (企业微信 客户联系). Three kinds of message, by ``extra["mode"]``:

- ``welcome``: the welcome message for a customer just added, sent with the callback's
  ``welcome_code``, once, within 20 seconds of the add (``extra["welcome_deadline"]``, Unix
  seconds);
- ``mass``: a customer mass-send task (企业群发) from an employee (``extra["sender"]``): one task
  per sender and text, which the employee confirms in their client;
- ``mark_tag``: put corp tags on (``extra["add_tag"]``) or take them off a customer, as the
  employee ``extra["userid"]``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from siyu.channels.adapters.base import ProviderAccount, TokenStore, http_client
from siyu.channels.adapters.wechat_api import WechatApi
from siyu.channels.contracts import (
    ChannelKind,
    OutboundMessage,
    Outcome,
    PermanentFailure,
    RetryableFailure,
    Sent,
)

ENDPOINT = "https://qyapi.weixin.qq.com"
MASS_LIMIT = 10_000
WELCOME_SECONDS = 20


class WecomAdapter:
    provider: ClassVar[str] = "wecom"
    channel: ClassVar[ChannelKind] = ChannelKind.WECOM
    batch_size: ClassVar[int] = MASS_LIMIT

    def __init__(self, account: ProviderAccount, tokens: TokenStore, client: httpx.Client | None = None) -> None:
        self.account = account
        self.api = WechatApi(
            account,
            tokens,
            client or http_client(account, ENDPOINT),
            issue_path="/cgi-bin/gettoken",
            issue_params={"corpid": account.setting("corp_id"), "corpsecret": account.secrets.get("secret", "")},
        )

    def send(self, messages: Sequence[OutboundMessage]) -> list[Outcome]:
        outcomes: dict[str, Outcome] = {}
        tasks: dict[tuple[str, str, str], list[OutboundMessage]] = {}
        for m in messages:
            mode = str(m.content.extra.get("mode") or ("welcome" if m.content.extra.get("welcome_code") else "mass"))
            if mode == "welcome":
                outcomes[m.id] = self._welcome(m)
            elif mode == "mark_tag":
                outcomes[m.id] = self._mark_tag(m)
            elif mode == "mass":
                sender = str(m.content.extra.get("sender", ""))
                attachments = json.dumps(m.content.extra.get("attachments", []), sort_keys=True)
                tasks.setdefault((sender, m.content.text, attachments), []).append(m)
            else:
                outcomes[m.id] = PermanentFailure("unknown_mode", f"no WeCom message mode {mode!r}")
        for (sender, text, attachments), group in tasks.items():
            outcomes.update(self._mass(sender, text, json.loads(attachments), group))
        return [outcomes[m.id] for m in messages]

    def _welcome(self, m: OutboundMessage) -> Outcome:
        code = str(m.content.extra.get("welcome_code", ""))
        if not code:
            return PermanentFailure("no_welcome_code", "a welcome message needs the add callback's WelcomeCode")
        deadline = float(m.content.extra.get("welcome_deadline") or 0)
        if deadline and time.time() > deadline:
            return PermanentFailure("welcome_code_expired", f"the welcome code lapsed {WELCOME_SECONDS}s after the add")
        payload: dict[str, Any] = {"welcome_code": code, "text": {"content": m.content.text}}
        if m.content.extra.get("attachments"):
            payload["attachments"] = m.content.extra["attachments"]
        answer = self.api.post("/cgi-bin/externalcontact/send_welcome_msg", payload)
        if isinstance(answer, dict):
            return Sent()
        if isinstance(answer, PermanentFailure) and answer.code == "41096":
            return RetryableFailure("41096", "welcome message is being distributed by another app", 1.0)
        return answer

    def _mark_tag(self, m: OutboundMessage) -> Outcome:
        add, remove = list(m.content.extra.get("add_tag") or []), list(m.content.extra.get("remove_tag") or [])
        if not add and not remove:
            return PermanentFailure("no_tags", "mark_tag needs tags to add or remove")
        answer = self.api.post(
            "/cgi-bin/externalcontact/mark_tag",
            {
                "userid": str(m.content.extra.get("userid", "")),
                "external_userid": m.to,
                "add_tag": add,
                "remove_tag": remove,
            },
        )
        return Sent() if isinstance(answer, dict) else answer

    def _mass(self, sender: str, text: str, attachments: list[Any], group: list[OutboundMessage]) -> dict[str, Outcome]:
        if not sender:
            return {
                m.id: PermanentFailure("no_sender", "a mass-send task needs the employee who sends it") for m in group
            }
        payload: dict[str, Any] = {
            "chat_type": "single",
            "external_userid": [m.to for m in group],
            "sender": sender,
            "allow_select": False,
            "text": {"content": text},
        }
        if attachments:
            payload["attachments"] = attachments
        answer = self.api.post("/cgi-bin/externalcontact/add_msg_template", payload)
        if not isinstance(answer, dict):
            return {m.id: answer for m in group}
        refused = set(answer.get("fail_list") or [])
        task = str(answer.get("msgid", ""))
        return {
            m.id: PermanentFailure("fail_list", "WeCom left this customer out of the task (not the sender's customer)")
            if m.to in refused
            else Sent(provider_id=task)
            for m in group
        }
