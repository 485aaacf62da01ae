"""The audit log: every state change and every personal-data export goes through record_audit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.accounts.contracts import AuditEventPublic, Principal
from siyu.accounts.tables import AuditEvent
from siyu.core.pagination import Page
from siyu.storage.paging import newest_first


def record_audit(
    session: Session,
    actor: Principal | None,
    action: str,
    *,
    workspace_id: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one audit row in the caller's transaction (so it commits or rolls back with it)."""
    event = AuditEvent(
        actor_type=actor.actor_type if actor else "system",
        actor_id=actor.actor_id if actor else None,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details or {},
        ip=actor.ip if actor else None,
    )
    if workspace_id is not None:
        event.workspace_id = workspace_id
    session.add(event)


def _to_public(row: AuditEvent) -> AuditEventPublic:
    return AuditEventPublic(
        id=row.id,
        at=row.at,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        details=dict(row.details or {}),
        ip=row.ip,
    )


def list_audit(
    session: Session,
    *,
    action: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[AuditEventPublic]:
    """Newest first. Scoped to the session's workspace by the storage layer."""
    stmt = select(AuditEvent)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return newest_first(session, stmt, AuditEvent.id, cursor=cursor, limit=limit, convert=_to_public)
