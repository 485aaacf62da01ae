"""The audit log (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from siyu.accounts.audit import list_audit
from siyu.api.deps import Admin, ScopedSessionDep
from siyu.api.errors import COMMON_ERRORS
from siyu.api.schemas import AuditEventPublic, PagePublic
from siyu.core.pagination import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=COMMON_ERRORS)


@router.get("", response_model=PagePublic[AuditEventPublic])
def list_audit_events(
    principal: Admin,
    session: ScopedSessionDep,
    action: Annotated[str | None, Query(max_length=80)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> PagePublic[AuditEventPublic]:
    """Who changed or exported what, newest first."""
    page = list_audit(session, action=action, cursor=cursor, limit=limit)
    return PagePublic(items=[AuditEventPublic.model_validate(e) for e in page.items], next_cursor=page.next_cursor)
