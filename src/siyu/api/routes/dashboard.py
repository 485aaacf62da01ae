"""The console's home: headline counts and the 30-day trend."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from siyu.accounts.facade import get_workspace
from siyu.api.deps import DbDep, ScopedSessionDep, Viewer
from siyu.api.errors import COMMON_ERRORS
from siyu.api.schemas import DashboardOut
from siyu.reports.facade import dashboard
from siyu.storage.scoping import Scope

router = APIRouter(prefix="/api/v1/dashboard", tags=["reports"], responses=COMMON_ERRORS)


@router.get("", response_model=DashboardOut)
def get_dashboard(
    principal: Viewer,
    session: ScopedSessionDep,
    db: DbDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> DashboardOut:
    """Profiles, orders and events, with orders, paid amount (fen) and events per local day."""
    with db.transaction(Scope.unscoped_system()) as system:
        timezone = get_workspace(system, principal.workspace_id).timezone
    return DashboardOut.model_validate(dashboard(session, timezone=timezone, days=days))
