"""Holdouts: the workspace's global control group (a stable share of people never messaged by
campaigns, to measure overall uplift) and holdouts for one use; who is in them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.api.deps import Admin, Analyst, Operator, ScopedSessionDep
from siyu.api.errors import COMMON_ERRORS
from siyu.segments import facade
from siyu.segments.holdouts import MAX_SHARE_BP, HoldoutPublic

router = APIRouter(prefix="/api/v1/holdouts", tags=["holdouts"], responses=COMMON_ERRORS)


class HoldoutOut(BaseModel):
    id: str
    name: str
    kind: Literal["global", "use"]
    description: str
    share_bp: int = Field(description="the share set aside, in hundredths of a percent (500 = 5 %)")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, h: HoldoutPublic) -> HoldoutOut:
        return cls(
            id=h.id,
            name=h.name,
            kind=h.kind,
            description=h.description,
            share_bp=h.share_bp,
            created_at=h.created_at,
            updated_at=h.updated_at,
        )


class GlobalIn(BaseModel):
    share_bp: int = Field(ge=0, le=MAX_SHARE_BP, description="0 turns the global control group off")


class HoldoutIn(BaseModel):
    name: str = Field(max_length=80)
    share_bp: int = Field(ge=1, le=MAX_SHARE_BP)
    description: str = Field(default="", max_length=500)


class SplitOut(BaseModel):
    members: int
    held_out: int


class CheckOut(BaseModel):
    held_out: list[str] = Field(description="the people given that the holdout sets aside")


@router.get("", response_model=list[HoldoutOut])
def list_holdouts(principal: Analyst, session: ScopedSessionDep) -> list[HoldoutOut]:
    return [HoldoutOut.of(h) for h in facade.list_holdouts(session)]


@router.put("/global", response_model=HoldoutOut)
def set_global(body: GlobalIn, principal: Admin, session: ScopedSessionDep) -> HoldoutOut:
    """Set the global control group's share. People in it stay in it while it is on; a larger
    share only adds people."""
    done = facade.set_global_share(session, body.share_bp, principal.actor_id)
    record_audit(
        session,
        principal,
        "holdout.global",
        target_type="holdout",
        target_id=done.id,
        details={"share_bp": done.share_bp},
    )
    return HoldoutOut.of(done)


@router.post("", response_model=HoldoutOut, status_code=201)
def create_holdout(body: HoldoutIn, principal: Operator, session: ScopedSessionDep) -> HoldoutOut:
    """A holdout for one use (a campaign, a journey): independent of every other."""
    done = facade.create_holdout(session, body.name, body.share_bp, body.description, principal.actor_id)
    record_audit(
        session, principal, "holdout.create", target_type="holdout", target_id=done.id, details={"name": done.name}
    )
    return HoldoutOut.of(done)


@router.delete("/{holdout_id}", status_code=204)
def delete_holdout(holdout_id: str, principal: Operator, session: ScopedSessionDep) -> None:
    facade.delete_holdout(session, holdout_id)
    record_audit(session, principal, "holdout.delete", target_type="holdout", target_id=holdout_id)


@router.get("/{holdout_id}/split", response_model=SplitOut)
def split(
    holdout_id: str, principal: Analyst, session: ScopedSessionDep, segment_id: Annotated[str, Query(max_length=32)]
) -> SplitOut:
    """How many of a segment's members the holdout sets aside."""
    done = facade.holdout_split(session, holdout_id, segment_id)
    return SplitOut(members=done.members, held_out=done.held_out)


@router.get("/{holdout_id}/check", response_model=CheckOut)
def check(
    holdout_id: str,
    principal: Analyst,
    session: ScopedSessionDep,
    profile_id: Annotated[list[str], Query(max_length=500)],
) -> CheckOut:
    """Which of these people the holdout sets aside."""
    return CheckOut(held_out=sorted(facade.in_holdout(session, holdout_id, profile_id)))
