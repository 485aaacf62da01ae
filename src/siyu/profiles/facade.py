"""Profiles facade (reads for reports; bulk writes for loaders)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from siyu.profiles.tables import Profile
from siyu.storage.scoping import require_workspace


def count_profiles(scoped: Session) -> int:
    return int(scoped.scalar(select(func.count()).select_from(Profile)) or 0)


def insert_profile_rows(scoped: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk insert prepared rows into the session's workspace (the loader path)."""
    workspace_id = require_workspace(scoped)
    scoped.execute(insert(Profile), [{**r, "workspace_id": workspace_id} for r in rows])
