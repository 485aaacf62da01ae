"""Mini-program subscribe messages (subscribeMessage.send). Each acceptance a person gives in the
mini-program allows one send; values are checked against their keyword type's limits before
sending, as WeChat would refuse them (47003)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import ClassVar

import httpx

from siyu.channels.adapters.base import ProviderAccount, TokenStore
from siyu.channels.adapters.wechat_api import app_api
from siyu.channels.contracts import ChannelKind, OutboundMessage, Outcome, PermanentFailure, Sent

_CJK = re.compile(r"[\u4e00-\u9fff]")
# keyword type → a check of its value (WeChat's table of subscribe-message value rules)
_RULES: dict[str, tuple[str, Callable[[str], bool]]] = {
    "thing": ("at most 20 characters", lambda v: len(v) <= 20),
    "number": ("at most 32 digits", lambda v: bool(re.fullmatch(r"[\d.]{1,32}", v))),
    "letter": ("at most 32 letters", lambda v: bool(re.fullmatch(r"[A-Za-z]{1,32}", v))),
    "symbol": ("at most 5 symbols", lambda v: len(v) <= 5),
    "character_string": ("at most 32 letters, digits or symbols", lambda v: len(v) <= 32 and not _CJK.search(v)),
    "phone_number": ("at most 17 digits and symbols", lambda v: bool(re.fullmatch(r"[\d+\-() ]{1,17}", v))),
    "car_number": ("at most 8 characters", lambda v: len(v) <= 8),
    "name": (
        "at most 10 Chinese characters or 20 letters",
        lambda v: len(v) <= 10 if _CJK.search(v) else len(v) <= 20,
    ),
    "phrase": ("at most 5 Chinese characters", lambda v: len(v) <= 5 and all(_CJK.match(c) for c in v)),
}


def check_value(key: str, value: str) -> str | None:
    """Why WeChat would refuse ``value`` for keyword ``key`` (e.g. thing2), or None."""
    kind = re.sub(r"\d+$", "", key)
    rule = _RULES.get(kind)
    if not value:
        return f"{key} is empty"
    if rule is not None and not rule[1](value):
        return f"{key} ({kind}) must be {rule[0]}: {value!r}"
    return None


class MiniprogramAdapter:
    provider: ClassVar[str] = "miniprogram"
    channel: ClassVar[ChannelKind] = ChannelKind.MINIPROGRAM
    batch_size: ClassVar[int] = 50

    def __init__(self, account: ProviderAccount, tokens: TokenStore, client: httpx.Client | None = None) -> None:
        self.account = account
        self.api = app_api(account, tokens, client)

    def send(self, messages: Sequence[OutboundMessage]) -> list[Outcome]:
        return [self._one(m) for m in messages]

    def _one(self, m: OutboundMessage) -> Outcome:
        if not m.content.template:
            return PermanentFailure("no_template", "a subscribe message needs its template_id")
        for key, value in m.content.fields.items():
            problem = check_value(key, value)
            if problem:
                return PermanentFailure("47003", f"argument invalid: {problem}")
        payload = {
            "touser": m.to,
            "template_id": m.content.template,
            "page": m.content.link or "index",
            "miniprogram_state": self.account.setting("state", "formal"),
            "lang": "zh_CN",
            "data": {k: {"value": v} for k, v in m.content.fields.items()},
        }
        answer = self.api.post("/cgi-bin/message/subscribe/send", payload)
        if isinstance(answer, dict):
            return Sent(provider_id=str(answer.get("msgid", "")))
        return answer
