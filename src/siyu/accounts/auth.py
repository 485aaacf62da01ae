"""Authentication: password login with rate limiting, console sessions, API key resolution.

These functions look users and keys up before any workspace is known, so they take a
system-scoped session; each returns a Principal bound to exactly one workspace.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from siyu.accounts.audit import record_audit
from siyu.accounts.contracts import KeyScope, LoginResult, Principal, Role
from siyu.accounts.errors import (
    CsrfError,
    InvalidCredentialsError,
    LoginRateLimitedError,
    SessionExpiredError,
)
from siyu.accounts.facade import user_to_public
from siyu.accounts.passwords import verify_password
from siyu.accounts.tables import ApiKey, LoginAttempt, LoginSession, Membership, User
from siyu.accounts.tokens import hash_token, new_csrf_token, new_session_token
from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError

# Last use of a key is recorded at most once a minute (not on every request).
KEY_USE_RESOLUTION_S = 60
# Per-address limit is looser than per-account: several people may share an office NAT.
_IP_FACTOR = 4


def _attempt_keys(email: str, ip: str | None) -> list[str]:
    keys = ["email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]]
    if ip:
        keys.append("ip:" + ip[:64])
    return keys


def _check_rate(system: Session, email: str, ip: str | None, max_failures: int, window_s: int) -> None:
    since = utcnow() - timedelta(seconds=window_s)
    for key in _attempt_keys(email, ip):
        limit = max_failures if key.startswith("email:") else max_failures * _IP_FACTOR
        failures = (
            system.scalar(
                select(func.count()).select_from(LoginAttempt).where(LoginAttempt.key == key, LoginAttempt.at >= since)
            )
            or 0
        )
        if failures >= limit:
            raise LoginRateLimitedError(
                "too many failed sign-in attempts; try again later",
                details={"retry_after_seconds": window_s},
            )


def login(
    system: Session,
    *,
    email: str,
    password: str,
    ip: str | None,
    user_agent: str | None,
    ttl_hours: int,
    max_failures: int,
    window_seconds: int,
) -> LoginResult:
    """Check the password and open a session. Unknown email and wrong password look the same."""
    _check_rate(system, email, ip, max_failures, window_seconds)
    user = system.scalar(select(User).where(User.email == email.strip().lower()))
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        # The caller records the failure in its own transaction (this one rolls back).
        raise InvalidCredentialsError("email or password is incorrect")
    system.execute(delete(LoginAttempt).where(LoginAttempt.key == _attempt_keys(email, None)[0]))
    first = system.scalar(
        select(Membership.workspace_id).where(Membership.user_id == user.id).order_by(Membership.created_at)
    )
    token, csrf = new_session_token(), new_csrf_token()
    now = utcnow()
    row = LoginSession(
        token_hash=hash_token(token),
        csrf_token=csrf,
        user_id=user.id,
        current_workspace_id=first,
        expires_at=now + timedelta(hours=ttl_hours),
        ip=ip,
        user_agent=(user_agent or "")[:400],
    )
    system.add(row)
    user.last_login_at = now
    if first:
        actor = Principal(workspace_id=first, role=Role.VIEWER, user_id=user.id, ip=ip)
        record_audit(system, actor, "session.login", workspace_id=first, target_type="user", target_id=user.id)
    return LoginResult(session_token=token, csrf_token=csrf, user=user_to_public(user), expires_at=row.expires_at)


def record_failed_login(system: Session, *, email: str, ip: str | None) -> None:
    for key in _attempt_keys(email, ip):
        system.add(LoginAttempt(key=key))


def _live_session(system: Session, token: str) -> LoginSession:
    row = system.scalar(select(LoginSession).where(LoginSession.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        raise SessionExpiredError("your session has expired; sign in again")
    return row


def session_principal(
    system: Session,
    *,
    token: str,
    ip: str | None,
    workspace_id: str | None = None,
) -> tuple[Principal | None, LoginSession]:
    """The principal of a console session, in its current workspace (None if it has none)."""
    row = _live_session(system, token)
    user = system.get(User, row.user_id)
    if user is None or not user.is_active:
        raise SessionExpiredError("your session has expired; sign in again")
    target = workspace_id or row.current_workspace_id
    if target is None:
        return None, row
    role = system.scalar(
        select(Membership.role).where(Membership.user_id == user.id, Membership.workspace_id == target)
    )
    if role is None:
        if workspace_id is not None:
            raise NotFoundError("workspace not found")
        return None, row
    return Principal(workspace_id=target, role=Role(role), user_id=user.id, ip=ip, csrf_token=row.csrf_token), row


def check_csrf(expected: str | None, presented: str | None) -> None:
    if not expected or not presented or not hmac.compare_digest(expected, presented):
        raise CsrfError("missing or wrong X-CSRF-Token header; reload the console")


def switch_workspace(system: Session, *, token: str, workspace_id: str) -> None:
    row = _live_session(system, token)
    member = system.scalar(
        select(Membership.id).where(Membership.user_id == row.user_id, Membership.workspace_id == workspace_id)
    )
    if member is None:
        raise NotFoundError("workspace not found")
    row.current_workspace_id = workspace_id


def logout(system: Session, *, token: str) -> None:
    system.execute(
        update(LoginSession)
        .where(LoginSession.token_hash == hash_token(token), LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def api_key_principal(system: Session, *, token: str, ip: str | None) -> Principal:
    """The principal of an API key. Revoked or unknown keys are rejected alike. Read-only: the
    caller records use with :func:`touch_api_key` when :func:`key_use_is_stale` says so."""
    row = system.scalar(select(ApiKey).where(ApiKey.key_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        raise InvalidCredentialsError("API key is not valid")
    scope = KeyScope(row.scope)
    # A full key acts with admin rights in its workspace; an ingest key can only write events.
    role = Role.ADMIN if scope is KeyScope.FULL else Role.VIEWER
    stale = row.last_used_at is None or (utcnow() - row.last_used_at).total_seconds() > KEY_USE_RESOLUTION_S
    return Principal(
        workspace_id=row.workspace_id, role=role, api_key_id=row.id, key_scope=scope, ip=ip, key_use_stale=stale
    )


def touch_api_key(system: Session, key_id: str) -> None:
    system.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))
