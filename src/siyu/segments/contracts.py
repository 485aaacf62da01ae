"""Types that cross the segments domain's boundary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

SegmentKind = Literal["dynamic", "static"]


@dataclass(frozen=True)
class SegmentDraft:
    """A segment as an operator writes it: a dynamic one has a rule; a static one is given its
    people when it is created (or frozen from another segment)."""

    name: str
    kind: SegmentKind
    description: str = ""
    rule: dict[str, Any] | None = None


@dataclass(frozen=True)
class SegmentPublic:
    id: str
    name: str
    kind: str
    description: str
    rule: dict[str, Any] | None
    frozen_from: str | None
    people: int
    refreshed_at: datetime | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SizePoint:
    day: date
    people: int
    entered: int
    exited: int


@dataclass(frozen=True)
class Member:
    profile_id: str
    entered_at: datetime


@dataclass(frozen=True)
class SegmentSpec:
    """A dynamic segment as the batch run needs it."""

    id: str
    name: str
    rule: dict[str, Any]


@dataclass(frozen=True)
class SegmentsWritten:
    segments: int
    entered: int
    exited: int
