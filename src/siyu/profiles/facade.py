"""Profiles facade: counts, bulk loads, and keeping profile rows in step with identity outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.identity.resolver import ProfileChange
from siyu.profiles.tables import Profile
from siyu.storage.scoping import require_workspace


def count_profiles(scoped: Session) -> int:
    return int(scoped.scalar(select(func.count()).select_from(Profile)) or 0)


def insert_profile_rows(scoped: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk insert prepared rows into the session's workspace (the loader path)."""
    workspace_id = require_workspace(scoped)
    scoped.execute(insert(Profile), [{**r, "workspace_id": workspace_id} for r in rows])


def apply_identity_outcome(scoped: Session, new_profile_ids: Sequence[str], changes: Sequence[ProfileChange]) -> None:
    """Create the profiles identity resolution minted and fold merged ones into their survivor.

    A merged profile's traits fill the survivor's gaps (the survivor's values win until trait
    precedence rules arrive); its first/last seen widen the survivor's.
    """
    if not new_profile_ids and not changes:
        return
    now = utcnow()
    for profile_id in new_profile_ids:
        scoped.add(Profile(id=profile_id, traits={}, first_seen_at=now, last_seen_at=now))
    scoped.flush()
    for change in changes:
        if change.action != "merge":
            continue
        survivor = scoped.scalar(select(Profile).where(Profile.id == change.survivor_id))
        other = scoped.scalar(select(Profile).where(Profile.id == change.other_id))
        if survivor is None or other is None:
            continue
        survivor.traits = {**(other.traits or {}), **(survivor.traits or {})}
        survivor.display_name = survivor.display_name or other.display_name
        survivor.first_seen_at = min(survivor.first_seen_at, other.first_seen_at)
        survivor.last_seen_at = max(survivor.last_seen_at, other.last_seen_at)
        scoped.delete(other)
