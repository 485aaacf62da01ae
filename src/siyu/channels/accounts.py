"""A workspace's provider accounts: created with their secrets sealed, shown with the secrets
never echoed back (only which are set), and opened into adapters for sending."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.channels.adapters.base import ProviderAccount
from siyu.channels.contracts import ChannelKind
from siyu.channels.errors import AccountNotFoundError, NoAccountError
from siyu.channels.providers import provider_spec
from siyu.channels.tables import ChannelAccount
from siyu.core.errors import ConflictError, ValidationFailedError
from siyu.storage.sealing import seal, unseal


@dataclass(frozen=True)
class AccountPublic:
    id: str
    channel: str
    provider: str
    name: str
    settings: dict[str, Any]
    secrets_set: tuple[str, ...]  # which secrets are stored (never their values)
    is_default: bool
    rate_per_second: float
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AccountIn:
    channel: ChannelKind
    provider: str
    name: str
    settings: dict[str, Any]
    secrets: dict[str, str]  # on update, a secret left out keeps its stored value
    is_default: bool = True
    rate_per_second: float | None = None
    enabled: bool = True


def _secrets(row: ChannelAccount, secret_key: str) -> dict[str, str]:
    return dict(json.loads(unseal(secret_key, row.secrets_sealed))) if row.secrets_sealed else {}


def account_to_public(row: ChannelAccount, secret_key: str) -> AccountPublic:
    return AccountPublic(
        id=row.id,
        channel=row.channel,
        provider=row.provider,
        name=row.name,
        settings=dict(row.settings or {}),
        secrets_set=tuple(sorted(k for k, v in _secrets(row, secret_key).items() if v)),
        is_default=row.is_default,
        rate_per_second=row.rate_per_second,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def list_accounts(scoped: Session, secret_key: str) -> list[AccountPublic]:
    rows = scoped.scalars(select(ChannelAccount).order_by(ChannelAccount.channel, ChannelAccount.name))
    return [account_to_public(r, secret_key) for r in rows]


def account_row(scoped: Session, account_id: str) -> ChannelAccount:
    row = scoped.get(ChannelAccount, account_id)
    if row is None:
        raise AccountNotFoundError("channel account not found")
    return row


def save_account(scoped: Session, secret_key: str, data: AccountIn, account_id: str | None = None) -> AccountPublic:
    """Create (``account_id`` None) or update an account after checking it against its
    provider's fields. The first account of a channel becomes its default."""
    spec = provider_spec(data.provider)
    if data.channel not in spec.channels:
        raise ValidationFailedError(f"{spec.label} does not send {data.channel.value}")
    row = account_row(scoped, account_id) if account_id else None
    secrets = {**(_secrets(row, secret_key) if row else {}), **{k: v for k, v in data.secrets.items() if v}}
    known = {f.key for f in spec.fields}
    problems = [f"unknown setting {k!r}" for k in {**data.settings, **data.secrets} if k not in known]
    for f in spec.fields:
        given = secrets.get(f.key) if f.secret else data.settings.get(f.key)
        if f.secret and f.key in data.settings:
            problems.append(f"{f.key} is a secret: give it under secrets")
        if f.required and not given:
            problems.append(f"{f.label} ({f.key}) is required")
    if problems:
        raise ValidationFailedError(
            f"{spec.label}: " + "; ".join(problems), details=[{"loc": ["settings"], "msg": p} for p in problems]
        )
    clash = scoped.scalar(select(ChannelAccount.id).where(ChannelAccount.name == data.name))
    if clash and clash != account_id:
        raise ConflictError(f"a channel account is already named {data.name!r}")
    if row is None:
        first = scoped.scalar(select(ChannelAccount.id).where(ChannelAccount.channel == data.channel.value)) is None
        row = ChannelAccount(channel=data.channel.value, provider=data.provider)
        scoped.add(row)
    else:
        first = False
        if (row.channel, row.provider) != (data.channel.value, data.provider):
            raise ValidationFailedError("an account's channel and provider cannot change: add another account")
    row.name = data.name
    row.settings = {k: v for k, v in data.settings.items() if v not in (None, "")}
    row.secrets_sealed = seal(secret_key, json.dumps(secrets))
    row.rate_per_second = data.rate_per_second or row.rate_per_second or spec.default_rate
    row.enabled = data.enabled
    row.is_default = data.is_default or first
    scoped.flush()
    if row.is_default:
        scoped.execute(
            update(ChannelAccount)
            .where(ChannelAccount.channel == row.channel, ChannelAccount.id != row.id)
            .values(is_default=False)
        )
    return account_to_public(row, secret_key)


def delete_account(scoped: Session, account_id: str) -> None:
    scoped.delete(account_row(scoped, account_id))


def default_account(scoped: Session, channel: ChannelKind) -> ChannelAccount:
    row = scoped.scalar(
        select(ChannelAccount).where(
            ChannelAccount.channel == channel.value, ChannelAccount.is_default, ChannelAccount.enabled
        )
    )
    if row is None:
        raise NoAccountError(f"no enabled {channel.value} account: add one under channel settings")
    return row


def open_account(row: ChannelAccount, secret_key: str) -> ProviderAccount:
    return ProviderAccount(
        id=row.id,
        workspace_id=row.workspace_id,
        provider=row.provider,
        settings=dict(row.settings or {}),
        secrets=_secrets(row, secret_key),
    )
