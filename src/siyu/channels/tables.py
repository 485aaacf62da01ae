"""Channel accounts, the send ledger, receipts, suppressions, templates and the send policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, JSONType, Timestamped, WorkspaceScoped


class ChannelAccount(WorkspaceScoped, Timestamped, Base):
    """A workspace's account with a provider. ``settings`` are in the clear (sign names, app
    ids, endpoints); ``secrets_sealed`` holds the secrets as one sealed JSON object."""

    __tablename__ = "channel_accounts"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        Index("ix_channel_accounts_ws_channel", "workspace_id", "channel"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("chn_"))
    channel: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(80))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets_sealed: Mapped[str] = mapped_column(Text, default="")
    # The account its channel's messages go through unless a template names another.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # The provider's rate limit for this account, in messages per second.
    rate_per_second: Mapped[float] = mapped_column(Float, default=100.0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Message(WorkspaceScoped, Base):
    """The send ledger: one row per (source, recipient, step) — ``key`` — so a message is
    prepared once and sent at most once. Skipped messages stay too, with their reason.

    ``status``: queued → sending (claimed; ``not_before`` is then the claim's lease end) → sent,
    failed or skipped; a retry goes back to queued with a later ``not_before``. Receipts move
    sent to delivered or undelivered."""

    __tablename__ = "messages"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (
        UniqueConstraint("workspace_id", "key"),
        # The dispatcher's claim reads only messages waiting to go.
        Index(
            "ix_messages_due",
            "workspace_id",
            "not_before",
            sqlite_where=text("status IN ('queued', 'sending')"),
            postgresql_where=text("status IN ('queued', 'sending')"),
        ),
        # Frequency caps and the person's history.
        Index("ix_messages_workspace_id_profile_id_created_at", "workspace_id", "profile_id", "created_at"),
        # Receipts name the provider's id for the message.
        Index("ix_messages_workspace_id_provider_id", "workspace_id", "provider_id"),
        Index("ix_messages_workspace_id_source", "workspace_id", "source"),
        # Sent and not yet reported on: what the sandbox's simulated receipts go through.
        Index(
            "ix_messages_awaiting_receipt",
            "workspace_id",
            "sent_at",
            sqlite_where=text("status = 'sent'"),
            postgresql_where=text("status = 'sent'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("msg_"))
    key: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(16))  # marketing | transactional
    account_id: Mapped[str | None] = mapped_column(String(32), default=None)
    profile_id: Mapped[str | None] = mapped_column(String(32), default=None)
    address: Mapped[str] = mapped_column(String(200), default="")
    template_id: Mapped[str | None] = mapped_column(String(32), default=None)
    # What goes out, as the adapter is given it (siyu.channels.contracts.Content).
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Who asked for it: "campaign:cmp_…", "journey:jr_…", "test", …
    source: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(12), default="queued")
    reason: Mapped[str] = mapped_column(String(300), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    provider_id: Mapped[str] = mapped_column(String(100), default="")
    parts: Mapped[int] = mapped_column(Integer, default=0)
    # When a dispatcher began handing it to the provider; cleared when the provider's answer is
    # recorded. Set on a claim that lapsed, it means the dispatcher died mid-handover: the
    # provider may have it, so it is looked up there (or given up as unknown), never resent.
    handed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageReceipt(WorkspaceScoped, Base):
    """What came back: a delivery report, a reply, an unsubscribe. ``dedupe_key`` makes a
    provider's retried callback count once."""

    __tablename__ = "message_receipts"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (
        UniqueConstraint("workspace_id", "dedupe_key"),
        Index("ix_message_receipts_message_id", "message_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("rcp_"))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str | None] = mapped_column(String(32), default=None)
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(16))  # delivered | undelivered | reply | unsubscribe | click
    address: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(WorkspaceScoped, Base):
    """An address nothing more is sent to on a channel: it replied R, unsubscribed, blocked us,
    or an operator put it here."""

    __tablename__ = "suppressions"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    # Led by the address: the policy and receipts look addresses up.
    __table_args__ = (UniqueConstraint("workspace_id", "address", "channel"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("sup_"))
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(300), default="")
    source: Mapped[str] = mapped_column(String(100), default="")
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageTemplate(WorkspaceScoped, Timestamped, Base):
    """A message for one channel, with variables (Jinja2, sandboxed) and per-segment variants
    (千人千面): the first variant whose segment holds the person is used, else the base."""

    __tablename__ = "message_templates"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("tpl_"))
    name: Mapped[str] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(16))  # marketing | transactional
    account_id: Mapped[str | None] = mapped_column(String(32), default=None)
    # The provider's approved template (Aliyun TemplateCode, Tencent TemplateId, WeChat id).
    provider_template: Mapped[str] = mapped_column(String(100), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    # Provider template variables, each a Jinja2 expression template: {"thing2": "{{ profile.name }}"}.
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    link: Mapped[str] = mapped_column(String(500), default="")
    # [{"segment_id", "subject", "body", "fields"}]
    variants: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)


class SendPolicySettings(WorkspaceScoped, Base):
    """A workspace's send policy: quiet hours per channel, frequency caps, sensitive words."""

    __tablename__ = "send_policies"
    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sensitive_words: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AccessToken(WorkspaceScoped, Base):
    """A provider's access token (WeChat, WeCom, Getui), shared by every worker: fetching a new
    one makes the last expire within minutes, and the fetches a day are capped."""

    __tablename__ = "channel_access_tokens"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by the key instead
    key: Mapped[str] = mapped_column(String(100), primary_key=True)  # account id and token kind
    token_sealed: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column()


class SubscribeAcceptance(WorkspaceScoped, Base):
    """Mini-program one-time subscriptions: each acceptance a person gives for a template allows
    one subscribe message; ``used`` counts the messages prepared against them."""

    __tablename__ = "subscribe_acceptances"
    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    address: Mapped[str] = mapped_column(String(200), primary_key=True)  # the openid
    template: Mapped[str] = mapped_column(String(100), primary_key=True)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    used: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChannelCode(WorkspaceScoped, Base):
    """A code that brings people into WeChat with its own scene: ``kind`` oa_qr (an official
    account's parametric QR code; ``ticket`` is WeChat's, ``url`` what the QR image encodes) or
    wecom_contact (a 「联系我」contact way; ``ticket`` is its config_id, kept to change or delete
    it, ``url`` its QR code). The follow, scan and add callbacks carry ``scene`` back."""

    __tablename__ = "channel_codes"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (
        UniqueConstraint("workspace_id", "scene"),
        Index("ix_channel_codes_workspace_id_source", "workspace_id", "source"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("cc_"))
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(80))
    account_id: Mapped[str] = mapped_column(String(32))
    scene: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(100), default="")
    ticket: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(500))
    staff: Mapped[list[str]] = mapped_column(JSONType, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
