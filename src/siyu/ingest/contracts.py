"""Types that cross the ingest boundary."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class EventType(enum.StrEnum):
    TRACK = "track"
    IDENTIFY = "identify"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a microsecond per event
class IncomingEvent:
    """One Segment-spec call, validated and with its timestamp corrected for client clock skew."""

    type: EventType
    message_id: str
    timestamp: datetime
    anonymous_id: str | None = None
    user_id: str | None = None
    event: str | None = None  # track: event name; page/screen: page or screen name
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    group_id: str | None = None
    previous_id: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.user_id is None and self.anonymous_id is None


@dataclass(frozen=True)
class RejectedEvent:
    index: int
    code: str
    message: str


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    rejected: list[RejectedEvent]
