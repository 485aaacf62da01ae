"""Operators' word on who is who: split identifiers off a profile, or merge two profiles.

Each is recorded as constraints (cannot-links, must-links) that every later resolution and the
batch rebuild respect, then the component is re-solved as ingestion re-solves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import ConflictError, NotFoundError, ValidationFailedError
from siyu.core.ids import new_id
from siyu.identity.partition import sort_key
from siyu.identity.resolver import ProfileChange, _recompute, to_identifier
from siyu.identity.rules import IdentityRules
from siyu.identity.settings import workspace_rules
from siyu.identity.tables import Identity, IdentityConstraint
from siyu.storage.scoping import require_workspace


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _profile_rows(scoped: Session, profile_id: str) -> list[Identity]:
    rows = list(scoped.scalars(select(Identity).where(Identity.profile_id == profile_id)))
    if not rows:
        raise NotFoundError("profile not found or has no identifiers")
    return rows


def split_profile(
    scoped: Session,
    profile_id: str,
    identity_ids: Sequence[str],
    *,
    actor_id: str | None,
    rules: IdentityRules | None = None,
) -> tuple[list[str], list[ProfileChange]]:
    """Say the given identifiers are not the same person as the rest of the profile.

    Recorded as cannot-links (undoing earlier manual merges between the two sides), then the
    component is re-solved: the side holding the strongest identifier keeps the profile id.
    """
    rules = rules or workspace_rules(scoped)
    rows = _profile_rows(scoped, profile_id)
    moving = {r.id for r in rows} & set(identity_ids)
    if set(identity_ids) - moving:
        raise NotFoundError("some identifiers are not on this profile")
    staying = [r.id for r in rows if r.id not in moving]
    if not moving or not staying:
        raise ValidationFailedError("choose some, but not all, of the profile's identifiers to split off")
    _forget(scoped, "must", moving, set(staying))
    workspace_id = require_workspace(scoped)
    scoped.execute(
        _insert(scoped)(IdentityConstraint).on_conflict_do_nothing(
            index_elements=["workspace_id", "kind", "left_id", "right_id"]
        ),
        [
            {
                "id": new_id("ics_"),
                "workspace_id": workspace_id,
                "kind": "cannot",
                "left_id": m,
                "right_id": s_,
                "created_by": actor_id,
                "created_at": utcnow(),
            }
            for m in sorted(moving)
            for s_ in staying
        ],
    )
    new_ids, changes, _conflicts, _nodes = _recompute(scoped, {r.id for r in rows}, rules, label="manual")
    return new_ids, changes


def merge_profiles(
    scoped: Session,
    profile_id: str,
    other_profile_id: str,
    *,
    actor_id: str | None,
    rules: IdentityRules | None = None,
) -> tuple[list[str], list[ProfileChange]]:
    """Say two profiles are the same person. Refused (nothing changes) when the rules forbid it,
    e.g. both hold a different unionid."""
    rules = rules or workspace_rules(scoped)
    if profile_id == other_profile_id:
        raise ValidationFailedError("choose another profile to merge with")
    left, right = _profile_rows(scoped, profile_id), _profile_rows(scoped, other_profile_id)
    strongest = {r.id: r for r in (*left, *right)}

    def best(rows: list[Identity]) -> Identity:
        return min(rows, key=lambda r: sort_key(to_identifier(r), rules))

    a, b = best(left), best(right)
    _forget(scoped, "cannot", {r.id for r in left}, {r.id for r in right})
    scoped.add(IdentityConstraint(kind="must", left_id=a.id, right_id=b.id, created_by=actor_id))
    new_ids, changes, conflicts, _nodes = _recompute(scoped, set(strongest), rules, label="manual")
    if a.profile_id != b.profile_id:
        reason = next((c.reason for c in conflicts), "the identity rules")
        raise ConflictError(f"these profiles cannot be one person: {reason}", details={"reason": reason})
    return new_ids, changes


def _forget(scoped: Session, kind: str, side_a: set[str], side_b: set[str]) -> None:
    """Drop earlier operator constraints of ``kind`` between the two sides (the newer word wins)."""
    scoped.execute(
        delete(IdentityConstraint).where(
            IdentityConstraint.kind == kind,
            or_(
                IdentityConstraint.left_id.in_(side_a) & IdentityConstraint.right_id.in_(side_b),
                IdentityConstraint.left_id.in_(side_b) & IdentityConstraint.right_id.in_(side_a),
            ),
        )
    )
