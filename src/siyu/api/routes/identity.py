"""The identity graph as a whole: full rebuilds, checked against the stored people."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from siyu.accounts.audit import record_audit
from siyu.api.deps import Admin, Analyst, ScopedSessionDep
from siyu.api.errors import COMMON_ERRORS
from siyu.profiles.rebuilds import RebuildRun, list_rebuilds, request_rebuild

router = APIRouter(prefix="/api/v1/identity", tags=["identity"], responses=COMMON_ERRORS)


class RebuildOut(BaseModel):
    id: str
    status: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    identifiers: int
    links: int
    people: int
    shared: int
    conflicts: int
    repaired: int
    duration_ms: int
    error: str | None

    @classmethod
    def of(cls, run: RebuildRun) -> RebuildOut:
        return cls(**run.__dict__)


@router.get("/rebuilds", response_model=list[RebuildOut])
def rebuilds(principal: Analyst, session: ScopedSessionDep) -> list[RebuildOut]:
    """Recent full rebuilds of this workspace's identity graph, newest first."""
    return [RebuildOut.of(r) for r in list_rebuilds(session)]


@router.post("/rebuilds", response_model=RebuildOut, status_code=202)
def start_rebuild(principal: Admin, session: ScopedSessionDep) -> RebuildOut:
    """Queue a full rebuild: every identifier and link re-solved at once; people that differ from
    the result are repaired (merged or split, audited as ``rebuild``). 409 while one is running."""
    run = request_rebuild(session, principal.actor_id)
    record_audit(session, principal, "identity.rebuild", target_type="identity_rebuild", target_id=run.id)
    return RebuildOut.of(run)
