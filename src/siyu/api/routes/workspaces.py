"""Workspaces and their members."""

from __future__ import annotations

from fastapi import APIRouter, Request

from siyu.accounts import facade
from siyu.analytics import facade as analytics
from siyu.api.deps import Admin, DbDep, ScopedSessionDep, SettingsDep, Viewer
from siyu.api.errors import COMMON_ERRORS
from siyu.api.schemas import MemberOut, MemberSet, UserPublic, WorkspaceCreate, WorkspacePublic
from siyu.core.errors import AuthenticationError, NotFoundError
from siyu.storage.scoping import Scope

router = APIRouter(prefix="/api/v1", tags=["workspaces"], responses=COMMON_ERRORS)


@router.get("/workspace", response_model=WorkspacePublic)
def current_workspace(principal: Viewer, db: DbDep) -> WorkspacePublic:
    """The workspace the caller is acting in."""
    with db.transaction(Scope.unscoped_system()) as system:
        return WorkspacePublic.model_validate(facade.get_workspace(system, principal.workspace_id))


@router.post("/workspaces", response_model=WorkspacePublic, status_code=201)
def create_workspace(
    body: WorkspaceCreate, principal: Viewer, db: DbDep, settings: SettingsDep, request: Request
) -> WorkspacePublic:
    """Create a new workspace (brand); the signed-in user becomes its owner."""
    if principal.user_id is None:
        raise AuthenticationError("workspaces are created by signed-in users, not API keys")
    with db.transaction(Scope.unscoped_system()) as system:
        created = facade.create_workspace(
            system, name=body.name, slug=body.slug, timezone=body.timezone, owner_user_id=principal.user_id
        )
    with db.transaction(Scope.workspace(created.id)) as scoped:
        analytics.install_default_schedule(scoped, created.timezone, settings.data_dir)
    return WorkspacePublic.model_validate(created)


@router.get("/members", response_model=list[MemberOut])
def list_members(principal: Viewer, session: ScopedSessionDep) -> list[MemberOut]:
    """Everyone with access to this workspace and their role."""
    return [MemberOut(user=UserPublic.model_validate(u), role=r) for u, r in facade.list_members(session)]


@router.put("/members", response_model=MemberOut)
def set_member(body: MemberSet, principal: Admin, session: ScopedSessionDep, db: DbDep) -> MemberOut:
    """Give an existing user a role in this workspace (admins; owners grant owner)."""
    with db.transaction(Scope.unscoped_system()) as system:
        user = facade.find_user_by_email(system, body.email)
    if user is None:
        raise NotFoundError("no user with this email; create the user first (siyu user create)")
    facade.add_member(session, principal, user_id=user.id, role=body.role)
    return MemberOut(user=UserPublic.model_validate(user), role=body.role)


@router.delete("/members/{user_id}", status_code=204)
def remove_member(user_id: str, principal: Admin, session: ScopedSessionDep) -> None:
    """Remove someone's access to this workspace (the last owner cannot be removed)."""
    facade.remove_member(session, principal, user_id=user_id)
