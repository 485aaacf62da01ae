"""Channels: provider accounts (secrets sealed, never shown again), the send policy, the
suppression list, mini-program acceptances, and the send ledger's messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.accounts.contracts import Role
from siyu.api.deps import Admin, Analyst, Operator, ScopedSessionDep, SettingsDep
from siyu.api.errors import COMMON_ERRORS
from siyu.api.schemas import PagePublic
from siyu.channels import accounts as channel_accounts
from siyu.channels import facade
from siyu.channels.acceptances import record_acceptances
from siyu.channels.callbacks import callback_secret
from siyu.channels.contracts import ChannelKind
from siyu.channels.ledger import STATUSES
from siyu.channels.policy import policy_from_dict, save_policy
from siyu.channels.providers import PROVIDERS
from siyu.channels.suppression import (
    list_suppressions,
    remove_suppression,
    suppress_addresses,
    suppression_address,
)
from siyu.core.errors import NotFoundError, ValidationFailedError
from siyu.identity.errors import InvalidIdentifierError
from siyu.storage.scoping import require_workspace

router = APIRouter(prefix="/api/v1/channels", tags=["channels"], responses=COMMON_ERRORS)

ChannelName = Literal["sms", "email", "wechat_oa", "miniprogram", "wecom", "app_push", "webhook"]


class FieldOut(BaseModel):
    key: str
    label: str
    secret: bool
    required: bool
    help: str


class ProviderOut(BaseModel):
    name: str
    label: str
    channels: list[str]
    fields: list[FieldOut]
    default_rate: float


@router.get("/providers", response_model=list[ProviderOut])
def providers(principal: Analyst) -> list[ProviderOut]:
    """Every provider and what an account with it needs (the settings form is built from this)."""
    return [
        ProviderOut(
            name=p.name,
            label=p.label,
            channels=[c.value for c in p.channels],
            fields=[
                FieldOut(key=f.key, label=f.label, secret=f.secret, required=f.required, help=f.help) for f in p.fields
            ],
            default_rate=p.default_rate,
        )
        for p in PROVIDERS.values()
    ]


class AccountIn(BaseModel):
    channel: ChannelName
    provider: str = Field(max_length=30)
    name: str = Field(min_length=1, max_length=80)
    settings: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict, description="on update, leave a secret out to keep it")
    is_default: bool = True
    rate_per_second: float | None = Field(default=None, gt=0, le=100_000)
    enabled: bool = True


class AccountOut(BaseModel):
    id: str
    channel: str
    provider: str
    name: str
    settings: dict[str, Any]
    secrets_set: list[str] = Field(description="which secrets are stored; their values are never shown")
    is_default: bool
    rate_per_second: float
    enabled: bool
    callback_urls: dict[str, str] = Field(description="where the provider should push receipts and replies (admins)")
    created_at: datetime
    updated_at: datetime


CALLBACKS = {
    "aliyun_sms": {"report": "report", "reply": "reply"},
    "tencent_sms": {"report": "status", "reply": "reply"},
}


def _account_out(a: channel_accounts.AccountPublic, public_url: str, secret_key: str, admin: bool) -> AccountOut:
    urls = {}
    if admin and a.provider in CALLBACKS:
        vendor = a.provider.split("_")[0]
        base = f"{public_url.rstrip('/')}/callbacks/sms/{vendor}/{a.id}/{callback_secret(secret_key, a.id)}"
        urls = {kind: f"{base}/{path}" for kind, path in CALLBACKS[a.provider].items()}
    return AccountOut(
        id=a.id,
        channel=a.channel,
        provider=a.provider,
        name=a.name,
        settings=a.settings,
        secrets_set=list(a.secrets_set),
        is_default=a.is_default,
        rate_per_second=a.rate_per_second,
        enabled=a.enabled,
        callback_urls=urls,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )


def _draft(body: AccountIn) -> channel_accounts.AccountIn:
    return channel_accounts.AccountIn(
        channel=ChannelKind(body.channel),
        provider=body.provider,
        name=body.name.strip(),
        settings=dict(body.settings),
        secrets=dict(body.secrets),
        is_default=body.is_default,
        rate_per_second=body.rate_per_second,
        enabled=body.enabled,
    )


@router.get("/accounts", response_model=list[AccountOut])
def list_accounts(principal: Analyst, session: ScopedSessionDep, settings: SettingsDep) -> list[AccountOut]:
    admin = principal.role.at_least(Role.ADMIN)
    return [
        _account_out(a, settings.public_url, settings.secret_key, admin)
        for a in channel_accounts.list_accounts(session, settings.secret_key)
    ]


@router.post("/accounts", response_model=AccountOut, status_code=201)
def create_account(body: AccountIn, principal: Admin, session: ScopedSessionDep, settings: SettingsDep) -> AccountOut:
    """Connect a provider account. Secrets are sealed at rest and never shown again."""
    account = channel_accounts.save_account(session, settings.secret_key, _draft(body))
    record_audit(session, principal, "channel_account.create", target_type="channel_account", target_id=account.id)
    return _account_out(account, settings.public_url, settings.secret_key, True)


@router.put("/accounts/{account_id}", response_model=AccountOut)
def update_account(
    account_id: str, body: AccountIn, principal: Admin, session: ScopedSessionDep, settings: SettingsDep
) -> AccountOut:
    account = channel_accounts.save_account(session, settings.secret_key, _draft(body), account_id)
    record_audit(session, principal, "channel_account.update", target_type="channel_account", target_id=account_id)
    return _account_out(account, settings.public_url, settings.secret_key, True)


@router.delete("/accounts/{account_id}", status_code=204)
def delete_account(account_id: str, principal: Admin, session: ScopedSessionDep) -> None:
    channel_accounts.delete_account(session, account_id)
    record_audit(session, principal, "channel_account.delete", target_type="channel_account", target_id=account_id)


class QuietIO(BaseModel):
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    action: Literal["delay", "drop"] = "delay"


class CapIO(BaseModel):
    channel: Literal["*", "sms", "email", "wechat_oa", "miniprogram", "wecom", "app_push", "webhook"]
    max: int = Field(ge=0, le=1000)
    days: int = Field(ge=1, le=365)


class PolicyIO(BaseModel):
    timezone: str = Field(default="", description="the workspace's time zone (read only)")
    quiet_hours: dict[ChannelName, QuietIO]
    caps: list[CapIO] = Field(max_length=20)
    sensitive_words: str = Field(default="", max_length=200_000, description="one per line, added to the built-in list")


@router.get("/policy", response_model=PolicyIO)
def get_policy(principal: Analyst, session: ScopedSessionDep) -> PolicyIO:
    """The send policy every message goes through: quiet hours, frequency caps, sensitive words."""
    policy, words = facade.workspace_policy(session)
    return PolicyIO.model_validate({**policy.to_dict(), "timezone": policy.timezone, "sensitive_words": words})


@router.put("/policy", response_model=PolicyIO)
def put_policy(body: PolicyIO, principal: Admin, session: ScopedSessionDep) -> PolicyIO:
    current, _ = facade.workspace_policy(session)
    data = body.model_dump(exclude={"timezone", "sensitive_words"})
    policy = policy_from_dict(data, current.timezone)
    save_policy(session, policy, body.sensitive_words)
    record_audit(session, principal, "send_policy.update", details=policy.to_dict())
    return PolicyIO.model_validate(
        {**policy.to_dict(), "timezone": policy.timezone, "sensitive_words": body.sensitive_words}
    )


class SuppressionOut(BaseModel):
    id: str
    channel: str
    address: str = Field(description="masked for roles that do not see personal data")
    reason: str
    source: str
    created_at: datetime


@router.get("/suppressions", response_model=PagePublic[SuppressionOut])
def suppressions(
    principal: Analyst,
    session: ScopedSessionDep,
    channel: ChannelName | None = None,
    q: Annotated[str, Query(max_length=200)] = "",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PagePublic[SuppressionOut]:
    mask = not principal.role.sees_personal_data
    page = list_suppressions(session, channel, q, cursor, limit)
    return PagePublic(
        items=[
            SuppressionOut(
                id=s.id,
                channel=s.channel,
                address=facade.mask_address(s.channel, s.address) if mask else s.address,
                reason=s.reason,
                source=s.source,
                created_at=s.created_at,
            )
            for s in page.items
        ],
        next_cursor=page.next_cursor,
    )


class SuppressionEntry(BaseModel):
    channel: ChannelName
    address: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="added by hand", max_length=300)


class SuppressionsIn(BaseModel):
    entries: list[SuppressionEntry] = Field(min_length=1, max_length=10_000)


class AddedOut(BaseModel):
    added: int


def _address(channel: str, address: str, at: int) -> str:
    try:
        return suppression_address(channel, address)
    except InvalidIdentifierError as exc:
        raise ValidationFailedError(
            f"entries[{at}].address: {exc}", details=[{"loc": ["body", "entries", at, "address"], "msg": str(exc)}]
        ) from None


@router.post("/suppressions", response_model=AddedOut, status_code=201)
def add_suppressions(body: SuppressionsIn, principal: Operator, session: ScopedSessionDep) -> AddedOut:
    """Stop sending to these addresses on their channel (phones are normalised first)."""
    entries = [(e.channel, _address(e.channel, e.address, i), e.reason) for i, e in enumerate(body.entries)]
    added = suppress_addresses(session, entries, source="console", actor_id=principal.actor_id)
    record_audit(session, principal, "suppression.add", details={"entries": len(entries), "added": added})
    return AddedOut(added=added)


@router.delete("/suppressions/{suppression_id}", status_code=204)
def delete_suppression(suppression_id: str, principal: Admin, session: ScopedSessionDep) -> None:
    """Send to the address again (the person's consent still decides marketing)."""
    if not remove_suppression(session, suppression_id):
        raise NotFoundError("suppression not found")
    record_audit(session, principal, "suppression.remove", target_type="suppression", target_id=suppression_id)


class AcceptanceIn(BaseModel):
    openid: str = Field(min_length=1, max_length=200)
    template_id: str = Field(min_length=1, max_length=100)


class AcceptancesIn(BaseModel):
    items: list[AcceptanceIn] = Field(min_length=1, max_length=1000)


@router.post("/acceptances", response_model=AddedOut, status_code=201)
def acceptances(body: AcceptancesIn, principal: Operator, session: ScopedSessionDep) -> AddedOut:
    """Mini-program subscription acceptances (after ``wx.requestSubscribeMessage``): each allows
    one subscribe message of that template to that openid."""
    require_workspace(session)
    return AddedOut(added=record_acceptances(session, [(i.openid, i.template_id) for i in body.items]))


class ReceiptOut(BaseModel):
    kind: str
    at: datetime
    detail: dict[str, Any]


class MessageOut(BaseModel):
    id: str
    key: str
    channel: str
    kind: str
    account_id: str | None
    profile_id: str | None
    address: str = Field(description="masked for roles that do not see personal data")
    template_id: str | None
    content: dict[str, Any]
    source: str
    status: str
    reason: str
    attempts: int
    provider_id: str
    parts: int
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    receipts: list[ReceiptOut] = Field(default_factory=list)

    @classmethod
    def of(cls, m: facade.MessagePublic) -> MessageOut:
        return cls(
            **{k: v for k, v in m.__dict__.items() if k != "receipts"},
            receipts=[ReceiptOut(kind=r.kind, at=r.at, detail=r.detail) for r in m.receipts],
        )


StatusName = Literal["queued", "sending", "sent", "delivered", "undelivered", "failed", "skipped", "held"]
assert set(StatusName.__args__) == set(STATUSES)  # type: ignore[attr-defined]


@router.get("/messages", response_model=PagePublic[MessageOut])
def messages(
    principal: Analyst,
    session: ScopedSessionDep,
    channel: ChannelName | None = None,
    status: StatusName | None = None,
    source: Annotated[str | None, Query(max_length=100)] = None,
    profile_id: Annotated[str | None, Query(max_length=32)] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PagePublic[MessageOut]:
    """The send ledger, newest first: what went out, what was skipped and why."""
    page = facade.list_messages(
        session,
        mask=not principal.role.sees_personal_data,
        channel=channel,
        status=status,
        source=source,
        profile_id=profile_id,
        cursor=cursor,
        limit=limit,
    )
    return PagePublic(items=[MessageOut.of(m) for m in page.items], next_cursor=page.next_cursor)


@router.get("/messages/{message_id}", response_model=MessageOut)
def message(message_id: str, principal: Analyst, session: ScopedSessionDep) -> MessageOut:
    return MessageOut.of(facade.get_message(session, message_id, mask=not principal.role.sees_personal_data))
