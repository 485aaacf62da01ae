"""Console sign-in: login, current session, workspace switch, logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from siyu.accounts import auth
from siyu.accounts.errors import InvalidCredentialsError
from siyu.accounts.facade import get_workspace, list_user_workspaces
from siyu.accounts.tables import User
from siyu.api.deps import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    DbDep,
    SettingsDep,
    SystemSessionDep,
    client_ip,
)
from siyu.api.errors import COMMON_ERRORS
from siyu.api.schemas import (
    LoginIn,
    MembershipOut,
    SessionOut,
    SwitchWorkspaceIn,
    UserPublic,
    WorkspacePublic,
)
from siyu.core.errors import AuthenticationError
from siyu.storage.scoping import Scope

router = APIRouter(prefix="/api/v1/session", tags=["session"], responses=COMMON_ERRORS)


def _session_out(system: SystemSessionDep, token: str, request: Request) -> SessionOut:
    principal, row = auth.session_principal(system, token=token, ip=client_ip(request))
    user = system.get(User, row.user_id)
    assert user is not None
    memberships = list_user_workspaces(system, user.id)
    workspace = get_workspace(system, principal.workspace_id) if principal else None
    return SessionOut(
        user=UserPublic.model_validate(user),
        csrf_token=row.csrf_token,
        workspace=WorkspacePublic.model_validate(workspace) if workspace else None,
        role=principal.role if principal else None,
        workspaces=[MembershipOut.model_validate(m) for m in memberships],
    )


def _cookie_token(request: Request) -> str:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise AuthenticationError("not signed in")
    return token


CookieToken = Annotated[str, Depends(_cookie_token)]


@router.post("/login", response_model=SessionOut)
def login(body: LoginIn, request: Request, response: Response, db: DbDep, settings: SettingsDep) -> SessionOut:
    """Sign in with email and password. Unknown email and wrong password get the same answer."""
    ip = client_ip(request)
    try:
        with db.transaction(Scope.unscoped_system()) as system:
            result = auth.login(
                system,
                email=body.email,
                password=body.password,
                ip=ip,
                user_agent=request.headers.get("user-agent"),
                ttl_hours=settings.session_ttl_hours,
                max_failures=settings.login_max_failures,
                window_seconds=settings.login_window_seconds,
            )
    except InvalidCredentialsError:
        with db.transaction(Scope.unscoped_system()) as system:
            auth.record_failed_login(system, email=body.email, ip=ip)
        raise
    max_age = settings.session_ttl_hours * 3600
    # The session cookie is invisible to scripts; the CSRF cookie is read by the console.
    for name, value, httponly in (
        (SESSION_COOKIE, result.session_token, True),
        (CSRF_COOKIE, result.csrf_token, False),
    ):
        response.set_cookie(
            name, value, max_age=max_age, httponly=httponly, samesite="lax", secure=settings.cookie_secure, path="/"
        )
    with db.transaction(Scope.unscoped_system()) as system:
        return _session_out(system, result.session_token, request)


@router.get("", response_model=SessionOut)
def current_session(request: Request, system: SystemSessionDep, token: CookieToken) -> SessionOut:
    """Who is signed in, the current workspace and role, and every workspace they can switch to."""
    return _session_out(system, token, request)


@router.post("/workspace", response_model=SessionOut)
def switch_workspace(
    body: SwitchWorkspaceIn, request: Request, system: SystemSessionDep, token: CookieToken
) -> SessionOut:
    """Make another of the user's workspaces the current one."""
    _principal, row = auth.session_principal(system, token=token, ip=client_ip(request))
    auth.check_csrf(row.csrf_token, request.headers.get(CSRF_HEADER))
    auth.switch_workspace(system, token=token, workspace_id=body.workspace_id)
    system.flush()
    return _session_out(system, token, request)


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response, system: SystemSessionDep, token: CookieToken) -> Response:
    """End the session."""
    _principal, row = auth.session_principal(system, token=token, ip=client_ip(request))
    auth.check_csrf(row.csrf_token, request.headers.get(CSRF_HEADER))
    auth.logout(system, token=token)
    response.status_code = 204
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
