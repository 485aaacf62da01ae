"""Holdouts: the workspace's global control group and holdouts for one use. Membership is a
stable random draw (``rules.buckets``), worked out whenever it is asked for, so it needs no
refresh and is the same in bulk and for one person. Campaigns and journeys never message anyone
in the global control group or in their own holdout (the send policy enforces it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.core.errors import ConflictError, NotFoundError, ValidationFailedError
from siyu.core.ids import new_id
from siyu.rules.buckets import bucket_of
from siyu.segments.library import flush_named
from siyu.segments.tables import Holdout
from siyu.storage.scoping import require_workspace

MAX_SHARE_BP = 5_000  # at most half of people
GLOBAL_NAME = "全局控制组"
MAX_HOLDOUTS = 500


@dataclass(frozen=True)
class HoldoutPublic:
    id: str
    name: str
    kind: str
    description: str
    share_bp: int
    seed: str
    created_at: datetime
    updated_at: datetime


def holdout_to_public(row: Holdout) -> HoldoutPublic:
    return HoldoutPublic(
        row.id, row.name, row.kind, row.description, row.share_bp, row.seed, row.created_at, row.updated_at
    )


def list_holdouts(scoped: Session) -> list[HoldoutPublic]:
    rows = scoped.scalars(select(Holdout).order_by(Holdout.kind, Holdout.name))
    return [holdout_to_public(r) for r in rows]


def get_holdout_row(scoped: Session, holdout_id: str) -> Holdout:
    row = scoped.scalar(select(Holdout).where(Holdout.id == holdout_id))
    if row is None:
        raise NotFoundError("holdout not found")
    return row


def global_holdout(scoped: Session) -> Holdout | None:
    return scoped.scalar(select(Holdout).where(Holdout.kind == "global"))


def set_global_share(scoped: Session, share_bp: int, actor_id: str | None) -> HoldoutPublic:
    """Set the global control group's share (0 turns it off). Its seed never changes, so people
    in it stay in it; a larger share adds people, a smaller one lets some go."""
    _check_share(share_bp, allow_zero=True)
    row = global_holdout(scoped)
    if row is None:
        row = Holdout(
            name=GLOBAL_NAME,
            kind="global",
            share_bp=share_bp,
            seed=f"global:{require_workspace(scoped)}",
            description="不接收任何营销消息的对照人群，用于衡量整体增量",
            created_by=actor_id,
        )
        scoped.add(row)
    row.share_bp = share_bp
    scoped.flush()
    return holdout_to_public(row)


def create_holdout(scoped: Session, name: str, share_bp: int, description: str, actor_id: str | None) -> HoldoutPublic:
    """A holdout for one use, with its own seed (so it is independent of the others)."""
    _check_share(share_bp, allow_zero=False)
    name = name.strip()
    if not name or len(name) > 80:
        raise ValidationFailedError("a holdout needs a name of 1 to 80 characters", details={"path": "name"})
    if (scoped.scalar(select(func.count()).select_from(Holdout)) or 0) >= MAX_HOLDOUTS:
        raise ValidationFailedError(f"a workspace holds at most {MAX_HOLDOUTS} holdouts")
    holdout_id = new_id("ho_")
    row = Holdout(
        id=holdout_id,
        name=name,
        kind="use",
        share_bp=share_bp,
        seed=f"holdout:{holdout_id}",
        description=description[:500],
        created_by=actor_id,
    )
    scoped.add(row)
    flush_named(scoped, name, "holdout")
    return holdout_to_public(row)


def delete_holdout(scoped: Session, holdout_id: str) -> None:
    row = get_holdout_row(scoped, holdout_id)
    if row.kind == "global":
        raise ConflictError("the global control group is turned off by setting its share to 0, not deleted")
    scoped.delete(row)
    scoped.flush()


def held_out(row: Holdout, profile_ids: Iterable[str]) -> set[str]:
    """Which of ``profile_ids`` are in the holdout."""
    return {p for p in profile_ids if bucket_of(row.seed, p) < row.share_bp}


def holdouts_of(scoped: Session, profile_id: str) -> list[HoldoutPublic]:
    """The holdouts a person is in."""
    rows = scoped.scalars(select(Holdout).order_by(Holdout.kind, Holdout.name))
    return [holdout_to_public(r) for r in rows if bucket_of(r.seed, profile_id) < r.share_bp]


def _check_share(share_bp: int, allow_zero: bool) -> None:
    low = 0 if allow_zero else 1
    if isinstance(share_bp, bool) or not isinstance(share_bp, int) or not low <= share_bp <= MAX_SHARE_BP:
        raise ValidationFailedError(
            f"a holdout's share is {low} to {MAX_SHARE_BP} hundredths of a percent (50 %)",
            details={"path": "share_bp"},
        )
