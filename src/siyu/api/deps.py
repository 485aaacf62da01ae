"""Typed dependencies: database sessions, the acting principal, role and scope checks.

Authentication: ``Authorization: Bearer <API key>`` or the console's session cookie. Cookie
requests that change state must echo the session's CSRF token in ``X-CSRF-Token``.
Every brand-data session handed to a route is scoped to the principal's workspace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from siyu.accounts import auth
from siyu.accounts.contracts import KeyScope, Principal, Role
from siyu.accounts.errors import KeyScopeError, RoleTooLowError
from siyu.api.keycache import KeyCache, lookup_key
from siyu.core.errors import AuthenticationError, NotFoundError
from siyu.core.settings import Settings
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

SESSION_COOKIE = "siyu_session"
CSRF_COOKIE = "siyu_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def system_session(db: DbDep) -> Iterator[Session]:
    """Only for authentication itself: looks users and keys up across workspaces."""
    with db.transaction(Scope.unscoped_system()) as session:
        yield session


SystemSessionDep = Annotated[Session, Depends(system_session, scope="function")]


def key_cache(request: Request) -> KeyCache:
    cache: KeyCache = request.app.state.key_cache
    return cache


def key_principal(request: Request, token: str) -> Principal:
    """Look the key up without taking the write lock; record its use at most once a minute."""
    return lookup_key(get_db(request), key_cache(request), token, client_ip(request))


def resolve_principal(request: Request, db: DbDep) -> Principal:
    ip = client_ip(request)
    token = bearer_token(request)
    if token is not None:
        return key_principal(request, token)
    with db.transaction(Scope.unscoped_system()) as system:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise AuthenticationError("sign in or pass an API key as a bearer token")
        principal, _row = auth.session_principal(system, token=cookie, ip=ip)
    if request.method not in SAFE_METHODS:
        auth.check_csrf(_row.csrf_token, request.headers.get(CSRF_HEADER))
    if principal is None:
        raise NotFoundError("no workspace selected; create or join a workspace")
    return principal


PrincipalDep = Annotated[Principal, Depends(resolve_principal)]


def full_api(principal: PrincipalDep) -> Principal:
    """Routes other than ingest refuse ingest-only write keys."""
    if principal.key_scope is KeyScope.INGEST:
        raise KeyScopeError("this key may only send events; create a full API key")
    return principal


def requires(role: Role) -> Callable[[Principal], Principal]:
    def check(principal: Annotated[Principal, Depends(full_api)]) -> Principal:
        if not principal.role.at_least(role):
            raise RoleTooLowError(f"this needs the {role.value} role or higher")
        return principal

    return check


Viewer = Annotated[Principal, Depends(requires(Role.VIEWER))]
Analyst = Annotated[Principal, Depends(requires(Role.ANALYST))]
Operator = Annotated[Principal, Depends(requires(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(requires(Role.ADMIN))]


def workspace_session(db: DbDep, principal: Annotated[Principal, Depends(full_api)]) -> Iterator[Session]:
    """A transaction scoped to the principal's workspace; commits before the response is sent."""
    with db.transaction(Scope.workspace(principal.workspace_id)) as session:
        yield session


ScopedSessionDep = Annotated[Session, Depends(workspace_session, scope="function")]
