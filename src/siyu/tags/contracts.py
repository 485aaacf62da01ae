"""Types that cross the tags domain's boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from siyu.ingest.people_file import RejectedRow

TagKind = Literal["manual", "rule", "computed"]

# What a computed tag's value is: the batch result (table, column) it is read from.
COMPUTED_SOURCES: dict[str, tuple[str, str]] = {
    "top_category": ("preferences", "top_category"),
    "top_brand": ("preferences", "top_brand"),
    "price_band": ("preferences", "price_band"),
    "top_platform": ("preferences", "top_platform"),
    "rfm_group": ("rfm", "rfm_group"),
    "lifecycle_stage": ("lifecycle", "stage"),
    "lead_grade": ("leads", "grade"),
}
COMPUTED_NAMES = {
    "top_category": "偏好品类",
    "top_brand": "偏好品牌",
    "price_band": "价格带",
    "top_platform": "常购平台",
    "rfm_group": "RFM 分层",
    "lifecycle_stage": "生命周期阶段",
    "lead_grade": "线索等级",
}


@dataclass(frozen=True)
class TagDraft:
    """A tag as an operator writes it; ``rule`` for rule tags, ``computed`` for computed ones."""

    name: str
    kind: TagKind
    description: str = ""
    owner: str = ""
    category_id: str | None = None
    rule: dict[str, Any] | None = None
    computed: dict[str, Any] | None = None


@dataclass(frozen=True)
class TagPublic:
    id: str
    name: str
    kind: str
    description: str
    owner: str
    category_id: str | None
    rule: dict[str, Any] | None
    computed: dict[str, Any] | None
    people: int
    evaluated_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CategoryPublic:
    id: str
    name: str
    parent_id: str | None
    position: int
    children: list[CategoryPublic] = field(default_factory=list)


@dataclass(frozen=True)
class TagChangePublic:
    profile_id: str
    change: str
    value: str
    source: str
    actor_id: str | None
    run_id: str | None
    at: datetime


@dataclass(frozen=True)
class CoveragePoint:
    day: date
    people: int
    added: int
    removed: int
    of_everyone: int


@dataclass(frozen=True)
class Tagged:
    """What putting a tag on (or off) some people did."""

    changed: int  # people who got (or lost) it now
    unchanged: int  # people who already had it (or never had it)


@dataclass(frozen=True)
class FileTagged:
    """A file of identifiers put through a tag: every row accounted for."""

    total: int
    tagged: int
    already: int
    rejected: list[RejectedRow]
