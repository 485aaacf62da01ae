"""The consent ledger: per channel address (a phone for SMS, an email, an openid…) and purpose
(marketing, audience upload to ad platforms — a separate consent under PIPL art. 23), every
grant and withdrawal with its source and proof. The current state is the latest record by time;
no record means no consent (fail closed).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.errors import ValidationFailedError
from siyu.profiles.tables import ConsentRecord
from siyu.storage.bulk import fetch_rows
from siyu.storage.keyed import keyed_rows


class Channel(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"
    WECHAT_OA = "wechat_oa"
    MINIPROGRAM = "miniprogram"
    WECOM = "wecom"
    APP_PUSH = "app_push"
    ADS = "ads"


class Purpose(enum.StrEnum):
    MARKETING = "marketing"
    AUDIENCE_UPLOAD = "audience_upload"


class ConsentStatus(enum.StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class ConsentIn:
    identity_id: str
    channel: Channel
    purpose: Purpose
    status: ConsentStatus
    at: datetime
    source: str
    proof: dict[str, Any]


@dataclass(frozen=True)
class ConsentState:
    identity_id: str
    channel: str
    purpose: str
    status: str
    at: datetime
    source: str
    proof: dict[str, Any]


def record_consents(scoped: Session, records: Sequence[ConsentIn]) -> None:
    """Append to the ledger. A grant must say what the person agreed to (proof.text or
    proof.text_version); a withdrawal needs no proof beyond its source."""
    for r in records:
        if r.status is ConsentStatus.GRANTED and not (r.proof.get("text") or r.proof.get("text_version")):
            raise ValidationFailedError(
                "a consent grant needs proof: the consent text or its version the person agreed to",
                details=[{"loc": ["proof"], "msg": "text or text_version required"}],
            )
        scoped.add(
            ConsentRecord(
                identity_id=r.identity_id,
                channel=r.channel.value,
                purpose=r.purpose.value,
                status=r.status.value,
                at=r.at,
                source=r.source[:100],
                proof=r.proof,
            )
        )


def current_consents(scoped: Session, identity_ids: Sequence[str]) -> list[ConsentState]:
    """Latest state per (address, channel, purpose) for these identifiers."""
    if not identity_ids:
        return []
    latest: dict[tuple[str, str, str], ConsentRecord] = {}
    rows = scoped.scalars(
        select(ConsentRecord)
        .where(ConsentRecord.identity_id.in_(list(identity_ids)))
        .order_by(ConsentRecord.at, ConsentRecord.recorded_at)
    )
    for row in rows:
        latest[(row.identity_id, row.channel, row.purpose)] = row
    return [
        ConsentState(r.identity_id, r.channel, r.purpose, r.status, r.at, r.source, dict(r.proof or {}))
        for r in latest.values()
    ]


def has_consent(scoped: Session, identity_id: str, channel: Channel, purpose: Purpose) -> bool:
    """True only with a grant that no later withdrawal replaced."""
    states = [s for s in current_consents(scoped, [identity_id]) if s.channel == channel and s.purpose == purpose]
    return bool(states) and states[0].status == ConsentStatus.GRANTED


def granted(scoped: Session, identity_ids: Iterable[str], channel: str, purpose: str) -> set[str]:
    """Which of ``identity_ids`` hold a grant for (channel, purpose) that no later withdrawal
    replaced — read in bulk, for audiences of any size."""
    latest: dict[str, tuple[Any, str, str]] = {}
    rows = fetch_rows(
        scoped, ConsentRecord, ("identity_id", "channel", "purpose", "status", "at", "id"), "identity_id", identity_ids
    )
    for identity_id, ch, pu, status, at, record_id in rows:
        if ch == channel and pu == purpose:
            key = (at, record_id, status)
            if identity_id not in latest or key[:2] > latest[identity_id][:2]:
                latest[identity_id] = key
    return {i for i, (_, _, status) in latest.items() if status == ConsentStatus.GRANTED}


_REACHABLE = """
SELECT i.profile_id, i.value, {consent}{ranking}
FROM keys CROSS JOIN identities i {{indexed_by:ix_identities_profile_id}} ON i.profile_id = keys.key
WHERE {{workspace:i}} AND i.kind IN ({kinds}) AND NOT i.weak AND NOT i.shared{scope}
"""
_GRANTED = (
    "(SELECT c.status FROM consent_records c WHERE c.identity_id = i.id AND c.channel = :channel "
    "AND c.purpose = :purpose AND {workspace:c} ORDER BY c.at DESC, c.id DESC LIMIT 1) = :granted"
)


def reachable(
    scoped: Session,
    profile_ids: Sequence[str],
    kinds: Sequence[str],
    consent: tuple[str, str] | None,
    *,
    scope: str | None = None,
    ranked: bool = False,
) -> list[tuple[Any, ...]]:
    """(profile_id, value, consented) of these people's own identifiers of ``kinds`` (neither
    weak nor shared; of ``scope`` — the app or corp — when one is given), with whether each holds
    a grant for ``consent`` (channel, purpose) that no later withdrawal replaced (truthy when it
    does, falsy otherwise and without ``consent``); with ``ranked``, also each identifier's kind
    and id, to choose between a person's several. One statement the database joins, for
    audiences of millions: the fewer columns, the sooner a million rows are read."""
    params: dict[str, Any] = {f"k{n}": k for n, k in enumerate(kinds)}
    if consent is not None:
        params |= {"channel": consent[0], "purpose": consent[1], "granted": ConsentStatus.GRANTED.value}
    if scope is not None:
        params["scope"] = scope
    sql = _REACHABLE.format(
        consent=_GRANTED if consent is not None else "NULL",
        ranking=", i.kind, i.id" if ranked else "",
        kinds=", ".join(f":k{n}" for n in range(len(kinds))),
        scope=" AND i.scope = :scope" if scope is not None else "",
    )
    return keyed_rows(scoped, sql, profile_ids, params)
