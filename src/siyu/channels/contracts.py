"""What crosses the channels boundary: the outbound-message contract every source (campaigns,
journeys, playbooks) hands in, and the outcome every adapter hands back. ``channels`` never
imports the senders; they only build :class:`OutboundMessage` values."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class ChannelKind(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"
    WECHAT_OA = "wechat_oa"
    MINIPROGRAM = "miniprogram"
    WECOM = "wecom"
    APP_PUSH = "app_push"
    WEBHOOK = "webhook"


class MessageKind(enum.StrEnum):
    """Marketing needs consent and keeps to quiet hours and frequency caps; transactional
    messages (order, delivery, verification notices) still respect suppression."""

    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


@dataclass(frozen=True)
class Content:
    """A rendered message. Each channel reads the parts it has:

    - ``text``: the SMS body as the person sees it (signature included), the email's plain part,
      a WeCom or push text;
    - ``subject`` and ``html``: email;
    - ``template``: the provider's template (Aliyun ``TemplateCode``, Tencent ``TemplateId``,
      WeChat ``template_id``);
    - ``fields``: the template's variables as the provider takes them (Tencent's ``{1}``, ``{2}``
      as keys "1", "2"; WeChat keywords such as ``thing2``);
    - ``link``: where a tap leads (a URL, or a mini-program page);
    - ``extra``: channel specifics (an email's unsubscribe URL, WeCom attachments…).
    """

    text: str = ""
    subject: str = ""
    html: str = ""
    template: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    link: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one address. ``id`` is its send-ledger id: adapters pass it to the
    provider as the idempotency key where the provider takes one (Aliyun ``OutId``, WeChat
    ``client_msg_id``, Tencent ``SessionContext``)."""

    id: str
    workspace_id: str
    channel: ChannelKind
    kind: MessageKind
    to: str
    content: Content
    profile_id: str | None = None


# Outcomes: expected outside failures are values, never exceptions.


@dataclass(frozen=True)
class Sent:
    provider_id: str = ""  # the provider's id for the message, joined with its receipts
    parts: int = 1  # billed parts (long SMS)


@dataclass(frozen=True)
class RetryableFailure:
    code: str
    reason: str
    retry_after: float | None = None  # seconds, when the provider says


@dataclass(frozen=True)
class PermanentFailure:
    code: str
    reason: str
    # The address refuses the channel (blocked us, unsubscribed at the provider): suppress it.
    suppress: bool = False


@dataclass(frozen=True)
class Skipped:
    reason: str


Outcome = Sent | RetryableFailure | PermanentFailure | Skipped
