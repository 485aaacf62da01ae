"""WeChat official account template messages (模板消息, service notifications): POST
/cgi-bin/message/template/send with the message id as ``client_msg_id`` so WeChat drops a
repeat. Delivery arrives later as a TEMPLATESENDJOBFINISH event joined on ``msgid``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from siyu.channels.adapters.base import ProviderAccount, TokenStore
from siyu.channels.adapters.wechat_api import app_api
from siyu.channels.contracts import ChannelKind, OutboundMessage, Outcome, PermanentFailure, Sent

# 43019: the person blocked the account (require remove blacklist).
_SUPPRESS = frozenset({43019})


class WechatTemplateAdapter:
    provider: ClassVar[str] = "wechat_oa"
    channel: ClassVar[ChannelKind] = ChannelKind.WECHAT_OA
    batch_size: ClassVar[int] = 50

    def __init__(self, account: ProviderAccount, tokens: TokenStore, client: httpx.Client | None = None) -> None:
        self.account = account
        self.api = app_api(account, tokens, client)

    def send(self, messages: Sequence[OutboundMessage]) -> list[Outcome]:
        return [self._one(m) for m in messages]

    def _one(self, m: OutboundMessage) -> Outcome:
        if not m.content.template:
            return PermanentFailure("no_template", "a template message needs its template_id")
        payload: dict[str, Any] = {
            "touser": m.to,
            "template_id": m.content.template,
            "client_msg_id": m.id,
            "data": {k: {"value": v} for k, v in m.content.fields.items()},
        }
        page = m.content.extra.get("miniprogram_page")
        if page:
            payload["miniprogram"] = {"appid": str(m.content.extra.get("miniprogram_appid", "")), "pagepath": str(page)}
        if m.content.link:
            payload["url"] = m.content.link
        answer = self.api.post("/cgi-bin/message/template/send", payload)
        if isinstance(answer, dict):
            return Sent(provider_id=str(answer.get("msgid", "")))
        if isinstance(answer, PermanentFailure) and int(answer.code) in _SUPPRESS:
            return PermanentFailure(answer.code, answer.reason, suppress=True)
        return answer
