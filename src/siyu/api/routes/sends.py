"""Quick sends: one template to a segment or a list of people, through the send policy. The
preview is the pre-send interception report: how many each policy rule would skip."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator

from siyu.accounts.audit import record_audit
from siyu.api.deps import Operator, ScopedSessionDep, SettingsDep
from siyu.api.errors import COMMON_ERRORS
from siyu.channels import facade
from siyu.channels.policy import SkipReason
from siyu.channels.prepare import Links, PrepareReport, Recipient, SendRequest
from siyu.core.ids import new_id
from siyu.segments.facade import member_ids

router = APIRouter(prefix="/api/v1/sends", tags=["sends"], responses=COMMON_ERRORS)

MAX_LISTED = 10_000


class SendIn(BaseModel):
    template_id: str = Field(max_length=32)
    segment_id: str | None = Field(default=None, max_length=32)
    profile_ids: list[str] = Field(default_factory=list, max_length=MAX_LISTED)
    holdout_id: str | None = Field(default=None, max_length=32)
    at: datetime | None = Field(default=None, description="when to send; now if not given")
    campaign: dict[str, Any] = Field(default_factory=dict, description="values templates read as campaign.*")

    @model_validator(mode="after")
    def _one_audience(self) -> SendIn:
        if bool(self.segment_id) == bool(self.profile_ids):
            raise ValueError("give either segment_id or profile_ids")
        return self


class SendOut(BaseModel):
    source: str = Field(description="the messages' source in the ledger (empty for a preview)")
    channel: str
    account_id: str
    total: int
    queued: int
    delayed: int = Field(description="queued for the next window of quiet hours")
    written: int
    skipped: dict[str, int] = Field(description=f"by reason: {', '.join(SkipReason.ALL)}")
    samples: dict[str, list[str]] = Field(description="a few people skipped for each reason")

    @classmethod
    def of(cls, report: PrepareReport, source: str) -> SendOut:
        return cls(
            source=source,
            channel=report.channel,
            account_id=report.account_id,
            total=report.total,
            queued=report.queued,
            delayed=report.delayed,
            written=report.written,
            skipped=dict(report.skipped),
            samples=report.samples,
        )


def _request(body: SendIn, session: Any, source: str) -> SendRequest:
    people = member_ids(session, body.segment_id) if body.segment_id else body.profile_ids
    return SendRequest(
        source=source,
        step="1",
        template_id=body.template_id,
        recipients=[Recipient(p) for p in people],
        campaign=body.campaign,
        holdout_id=body.holdout_id,
        at=body.at,
    )


@router.post("/preview", response_model=SendOut)
def preview(body: SendIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep) -> SendOut:
    """What a send would do, without sending: the interception report."""
    report = facade.prepare(
        session, _request(body, session, "preview"), Links(settings.public_url, settings.secret_key), dry_run=True
    )
    return SendOut.of(report, "")


@router.post("", response_model=SendOut, status_code=201)
def send(body: SendIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep) -> SendOut:
    """Send now (or at ``at``): every person becomes one ledger row, queued or skipped with why."""
    source = f"send:{new_id('snd_')}"
    report = facade.prepare(session, _request(body, session, source), Links(settings.public_url, settings.secret_key))
    record_audit(
        session,
        principal,
        "send.create",
        target_type="template",
        target_id=body.template_id,
        details={"source": source, "total": report.total, "queued": report.queued},
    )
    return SendOut.of(report, source)
