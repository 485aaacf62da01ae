"""Types that cross the accounts boundary."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    OPERATOR = "operator"
    ANALYST = "analyst"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank

    @property
    def sees_personal_data(self) -> bool:
        """Operators and above work with people directly; analysts and viewers see masked data."""
        return self.at_least(Role.OPERATOR)


_RANKS = {Role.VIEWER: 0, Role.ANALYST: 1, Role.OPERATOR: 2, Role.ADMIN: 3, Role.OWNER: 4}


class KeyScope(enum.StrEnum):
    """``ingest``: may only write events for its workspace (the Segment write key). ``full``: the API."""

    INGEST = "ingest"
    FULL = "full"


@dataclass(frozen=True)
class Principal:
    """Who is acting, in which workspace, with what rights. Built by the edge, passed to facades."""

    workspace_id: str
    role: Role
    user_id: str | None = None
    api_key_id: str | None = None
    key_scope: KeyScope | None = None
    ip: str | None = None
    csrf_token: str | None = field(default=None, repr=False)
    key_use_stale: bool = False

    @property
    def actor_type(self) -> str:
        return "user" if self.user_id else "api_key" if self.api_key_id else "system"

    @property
    def actor_id(self) -> str | None:
        return self.user_id or self.api_key_id


@dataclass(frozen=True)
class WorkspacePublic:
    id: str
    name: str
    slug: str
    timezone: str
    created_at: datetime


@dataclass(frozen=True)
class MembershipPublic:
    workspace: WorkspacePublic
    role: Role


@dataclass(frozen=True)
class UserPublic:
    id: str
    email: str
    display_name: str
    created_at: datetime


@dataclass(frozen=True)
class ApiKeyPublic:
    id: str
    name: str
    scope: KeyScope
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class ApiKeyCreated:
    key: ApiKeyPublic
    token: str  # shown once; only its hash is stored


@dataclass(frozen=True)
class LoginResult:
    session_token: str
    csrf_token: str
    user: UserPublic
    expires_at: datetime


@dataclass(frozen=True)
class AuditEventPublic:
    id: str
    at: datetime
    actor_type: str
    actor_id: str | None
    action: str
    target_type: str | None
    target_id: str | None
    details: dict[str, object]
    ip: str | None
