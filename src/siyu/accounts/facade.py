"""Accounts facade: workspaces, users, memberships and API keys.

Every state change is an audited action. Functions that take a workspace-scoped session only see
that workspace's rows; the few that must look across workspaces (listing a user's workspaces,
creating a workspace) say so and expect a system-scoped session.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.accounts.audit import record_audit
from siyu.accounts.contracts import (
    ApiKeyCreated,
    ApiKeyPublic,
    KeyScope,
    MembershipPublic,
    Principal,
    Role,
    UserPublic,
    WorkspacePublic,
)
from siyu.accounts.errors import EmailTakenError, LastOwnerError, RoleTooLowError, SlugTakenError
from siyu.accounts.passwords import hash_password
from siyu.accounts.tables import ApiKey, Membership, User, Workspace
from siyu.accounts.tokens import hash_token, new_api_key_token
from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError, ValidationFailedError

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def workspace_to_public(row: Workspace) -> WorkspacePublic:
    return WorkspacePublic(row.id, row.name, row.slug, row.timezone, row.created_at)


def user_to_public(row: User) -> UserPublic:
    return UserPublic(row.id, row.email, row.display_name, row.created_at)


def key_to_public(row: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        row.id,
        row.name,
        KeyScope(row.scope),
        row.prefix,
        row.created_at,
        row.last_used_at,
        row.revoked_at,
    )


def normalise_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned):
        raise ValidationFailedError(
            "email is not a valid address", details=[{"loc": ["email"], "msg": "invalid email"}]
        )
    return cleaned


def require_role(actor: Principal, role: Role) -> None:
    if not actor.role.at_least(role):
        raise RoleTooLowError(f"this action needs the {role.value} role or higher")


# --- workspaces (system scope: a workspace is not inside a workspace) -----------------------


def create_workspace(
    system: Session,
    *,
    name: str,
    slug: str,
    timezone: str = "Asia/Shanghai",
    owner_user_id: str | None = None,
) -> WorkspacePublic:
    if not _SLUG.match(slug):
        raise ValidationFailedError(
            "slug must be 2-63 lowercase letters, digits or '-'",
            details=[{"loc": ["slug"], "msg": "invalid slug"}],
        )
    if system.scalar(select(Workspace.id).where(Workspace.slug == slug)):
        raise SlugTakenError(f"a workspace with slug {slug!r} exists")
    workspace = Workspace(name=name.strip(), slug=slug, timezone=timezone)
    system.add(workspace)
    system.flush()
    if owner_user_id is not None:
        system.add(Membership(workspace_id=workspace.id, user_id=owner_user_id, role=Role.OWNER))
    record_audit(
        system,
        None,
        "workspace.create",
        workspace_id=workspace.id,
        target_type="workspace",
        target_id=workspace.id,
        details={"name": workspace.name, "slug": slug},
    )
    return workspace_to_public(workspace)


def get_workspace(system: Session, workspace_id: str) -> WorkspacePublic:
    row = system.get(Workspace, workspace_id)
    if row is None:
        raise NotFoundError("workspace not found")
    return workspace_to_public(row)


def find_workspace_by_slug(system: Session, slug: str) -> WorkspacePublic | None:
    row = system.scalar(select(Workspace).where(Workspace.slug == slug))
    return workspace_to_public(row) if row else None


def list_user_workspaces(system: Session, user_id: str) -> list[MembershipPublic]:
    """Every workspace the user belongs to (system scope: it spans workspaces by design)."""
    rows = system.execute(
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.name)
    ).all()
    return [MembershipPublic(workspace_to_public(ws), Role(role)) for ws, role in rows]


# --- users ---------------------------------------------------------------------------------


def create_user(system: Session, *, email: str, password: str, display_name: str = "") -> UserPublic:
    address = normalise_email(email)
    if system.scalar(select(User.id).where(User.email == address)):
        raise EmailTakenError("a user with this email exists")
    user = User(
        email=address,
        display_name=display_name or address.split("@")[0],
        password_hash=hash_password(password),
    )
    system.add(user)
    try:
        system.flush()
    except IntegrityError as exc:
        raise EmailTakenError("a user with this email exists") from exc
    return user_to_public(user)


def find_user_by_email(system: Session, email: str) -> UserPublic | None:
    row = system.scalar(select(User).where(User.email == email.strip().lower()))
    return user_to_public(row) if row else None


def role_in_workspace(scoped: Session, user_id: str) -> Role | None:
    role = scoped.scalar(select(Membership.role).where(Membership.user_id == user_id))
    return Role(role) if role else None


# --- memberships (workspace scope) ---------------------------------------------------------


def list_members(scoped: Session) -> list[tuple[UserPublic, Role]]:
    rows = scoped.execute(
        select(User, Membership.role).join(Membership, Membership.user_id == User.id).order_by(User.email)
    ).all()
    return [(user_to_public(u), Role(r)) for u, r in rows]


def add_member(scoped: Session, actor: Principal, *, user_id: str, role: Role) -> None:
    require_role(actor, Role.ADMIN)
    if role is Role.OWNER:
        require_role(actor, Role.OWNER)
    if scoped.get(User, user_id) is None:
        raise NotFoundError("user not found")
    existing = scoped.scalar(select(Membership).where(Membership.user_id == user_id))
    if existing is not None:
        if Role(existing.role) is Role.OWNER and role is not Role.OWNER:
            _ensure_another_owner(scoped, user_id)
        existing.role = role
    else:
        scoped.add(Membership(user_id=user_id, role=role))
    record_audit(
        scoped,
        actor,
        "member.set_role",
        target_type="user",
        target_id=user_id,
        details={"role": role.value},
    )


def remove_member(scoped: Session, actor: Principal, *, user_id: str) -> None:
    require_role(actor, Role.ADMIN)
    existing = scoped.scalar(select(Membership).where(Membership.user_id == user_id))
    if existing is None:
        raise NotFoundError("member not found")
    if Role(existing.role) is Role.OWNER:
        require_role(actor, Role.OWNER)
        _ensure_another_owner(scoped, user_id)
    scoped.delete(existing)
    record_audit(scoped, actor, "member.remove", target_type="user", target_id=user_id)


def _ensure_another_owner(scoped: Session, leaving_user_id: str) -> None:
    owners = scoped.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.role == Role.OWNER, Membership.user_id != leaving_user_id)
    )
    if not owners:
        raise LastOwnerError("a workspace must keep at least one owner")


# --- API keys (workspace scope) ------------------------------------------------------------


def create_api_key(scoped: Session, actor: Principal, *, name: str, scope: KeyScope) -> ApiKeyCreated:
    require_role(actor, Role.ADMIN)
    token, prefix = new_api_key_token(scope)
    row = ApiKey(
        name=name.strip() or scope.value,
        scope=scope,
        prefix=prefix,
        key_hash=hash_token(token),
        created_by=actor.actor_id,
    )
    scoped.add(row)
    scoped.flush()
    record_audit(
        scoped,
        actor,
        "api_key.create",
        target_type="api_key",
        target_id=row.id,
        details={"name": row.name, "scope": scope.value},
    )
    return ApiKeyCreated(key=key_to_public(row), token=token)


def list_api_keys(scoped: Session) -> list[ApiKeyPublic]:
    return [key_to_public(r) for r in scoped.scalars(select(ApiKey).order_by(ApiKey.id.desc()))]


def revoke_api_key(scoped: Session, actor: Principal, key_id: str) -> ApiKeyPublic:
    require_role(actor, Role.ADMIN)
    row = scoped.scalar(select(ApiKey).where(ApiKey.id == key_id))
    if row is None:
        raise NotFoundError("API key not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        record_audit(scoped, actor, "api_key.revoke", target_type="api_key", target_id=row.id)
    return key_to_public(row)
