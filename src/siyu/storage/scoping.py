"""The one mechanism that scopes brand data by workspace.

A :class:`Scope` is attached to each ORM session. Every ORM SELECT, UPDATE and DELETE touching a
:class:`WorkspaceScoped` entity gets ``workspace_id = <scope>`` added (``with_loader_criteria``),
new rows are stamped with the scope's workspace, and a flush of a row from another workspace is
refused. A session with no scope that touches scoped tables fails closed with TenancyError;
system code (migrations, the job runner, the demo seeder) opts out explicitly with
``Scope.system()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql import Executable, FromClause, TextClause
from sqlalchemy.sql.util import find_tables

from siyu.core.errors import TenancyError
from siyu.storage.base import Base, WorkspaceScoped

SCOPE_KEY = "siyu_scope"


@dataclass(frozen=True)
class Scope:
    workspace_id: str | None
    system: bool = False

    @classmethod
    def workspace(cls, workspace_id: str) -> Scope:
        return cls(workspace_id=workspace_id)

    @classmethod
    def unscoped_system(cls) -> Scope:
        return cls(workspace_id=None, system=True)


def scope_of(session: Session) -> Scope | None:
    scope = session.info.get(SCOPE_KEY)
    return scope if isinstance(scope, Scope) else None


def set_scope(session: Session, scope: Scope) -> None:
    session.info[SCOPE_KEY] = scope


@cache
def _scoped_tables() -> frozenset[FromClause]:
    return frozenset(
        mapper.local_table for mapper in Base.registry.mappers if issubclass(mapper.class_, WorkspaceScoped)
    )


def _touches_scoped(state: ORMExecuteState) -> bool:
    """Whether any workspace table appears anywhere in the statement (FROM, joins, subqueries)."""
    if any(issubclass(mapper.class_, WorkspaceScoped) for mapper in state.all_mappers):
        return True  # the common case, without walking the statement
    statement: Executable = state.statement
    scoped = _scoped_tables()
    for table in find_tables(statement, include_aliases=True, include_joins=True, include_crud=True):  # type: ignore[arg-type]
        if getattr(table, "element", table) in scoped:
            return True
    return False


@event.listens_for(Session, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    scope = scope_of(state.session)
    if isinstance(state.statement, TextClause) and not (scope is not None and scope.system):
        raise TenancyError("raw SQL text cannot be scoped to a workspace; use mapped classes")
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        # Lazy loads inherit the criteria of the statement that loaded the parent.
        return
    if scope is not None and scope.system:
        return
    if not _touches_scoped(state):
        return
    if scope is None or scope.workspace_id is None:
        raise TenancyError("query on workspace data without a workspace scope")
    if not state.is_orm_statement:
        # The criteria attach to mapped classes only; a Core statement on the bare table would
        # see every workspace, so it is refused rather than trusted.
        raise TenancyError("workspace tables must be queried through their mapped classes")
    workspace_id = scope.workspace_id
    state.statement = state.statement.options(
        with_loader_criteria(
            WorkspaceScoped,
            lambda cls: cls.workspace_id == workspace_id,
            include_aliases=True,
            track_closure_variables=False,
        )
    )


@event.listens_for(Session, "before_flush")
def _stamp_and_guard(session: Session, _ctx: Any, _instances: Any) -> None:
    scope = scope_of(session)
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if not isinstance(obj, WorkspaceScoped):
            continue
        if scope is not None and scope.system:
            if getattr(obj, "workspace_id", None) is None and not obj.workspace_optional:
                raise TenancyError(f"{type(obj).__name__} written by system code without a workspace")
            continue
        if scope is None or scope.workspace_id is None:
            raise TenancyError(f"{type(obj).__name__} written without a workspace scope")
        current = getattr(obj, "workspace_id", None)
        if current is None:
            obj.workspace_id = scope.workspace_id
        elif current != scope.workspace_id:
            raise TenancyError(f"{type(obj).__name__} belongs to another workspace")


def require_workspace(session: Session) -> str:
    """The session's workspace, for bulk paths that stamp rows themselves."""
    scope = scope_of(session)
    if scope is None or scope.workspace_id is None:
        raise TenancyError("bulk write to workspace data without a workspace scope")
    return scope.workspace_id
