"""Consent records: grants and withdrawals per channel address and purpose, with proof."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.api.deps import Operator, ScopedSessionDep
from siyu.api.errors import COMMON_ERRORS
from siyu.core.errors import ValidationFailedError
from siyu.identity.contracts import IdentifierKind
from siyu.identity.errors import InvalidIdentifierError
from siyu.identity.normalise import normalise
from siyu.ingest.consents import ConsentSubmission, submit_consents
from siyu.profiles.consent import Channel, ConsentStatus, Purpose

router = APIRouter(prefix="/api/v1/consents", tags=["consent"], responses=COMMON_ERRORS)


class AddressIn(BaseModel):
    kind: IdentifierKind = Field(description="phone for SMS, email, openid for WeChat, …")
    value: str = Field(min_length=1, max_length=200)
    scope: str = Field(default="", max_length=64, description="app id for openids, corp id for WeCom")


class ConsentRecordIn(BaseModel):
    address: AddressIn
    channel: Channel
    purpose: Purpose
    status: ConsentStatus
    at: AwareDatetime
    source: str = Field(min_length=1, max_length=100, description="landing page, SMS reply, import, …")
    proof: dict[str, Any] = Field(default_factory=dict, description="text/text_version, form, ip, reply …")


class ConsentsIn(BaseModel):
    records: list[ConsentRecordIn] = Field(min_length=1, max_length=1000)


class ConsentsOut(BaseModel):
    identity_ids: list[str]


@router.post("", response_model=ConsentsOut, status_code=201)
def record(body: ConsentsIn, principal: Operator, session: ScopedSessionDep) -> ConsentsOut:
    """Append grants and withdrawals to the ledger. Any invalid record refuses the whole request
    (422, naming the record), so a batch is never half-applied."""
    items = []
    for n, r in enumerate(body.records):
        try:
            address = normalise(r.address.kind, r.address.value, r.address.scope)
        except InvalidIdentifierError as exc:
            raise ValidationFailedError(
                f"record {n}: {exc.message}", details=[{"loc": ["body", "records", n, "address"], "msg": exc.message}]
            ) from exc
        items.append(ConsentSubmission(address, r.channel, r.purpose, r.status, r.at, r.source, r.proof))
    ids = submit_consents(session, items)
    record_audit(
        session, principal, "consent.record", target_type="identity", target_id=ids[0], details={"count": len(ids)}
    )
    return ConsentsOut(identity_ids=ids)
