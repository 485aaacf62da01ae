"""Identity facade."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from siyu.identity.contracts import Identifier
from siyu.identity.tables import Identity
from siyu.storage.scoping import require_workspace


def count_identities(scoped: Session) -> int:
    return int(scoped.scalar(select(func.count()).select_from(Identity)) or 0)


def identity_exists(scoped: Session, ident: Identifier) -> bool:
    return (
        scoped.scalar(
            select(Identity.id).where(
                Identity.kind == ident.kind.value, Identity.scope == ident.scope, Identity.value == ident.value
            )
        )
        is not None
    )


def insert_identity_rows(scoped: Session, rows: Sequence[dict[str, Any]]) -> None:
    workspace_id = require_workspace(scoped)
    scoped.execute(insert(Identity), [{**r, "workspace_id": workspace_id} for r in rows])
