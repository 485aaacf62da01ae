"""Types that cross the jobs boundary."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class JobStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class JobSpec:
    task: str
    payload: dict[str, Any]
    run_at: datetime | None = None
    workspace_id: str | None = None
    queue: str = "default"
    max_attempts: int = 5
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    task: str
    payload: dict[str, Any]
    workspace_id: str | None
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class JobPublic:
    id: str
    task: str
    queue: str
    status: JobStatus
    workspace_id: str | None
    run_at: datetime
    attempts: int
    max_attempts: int
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class SchedulePublic:
    id: str
    name: str
    cron: str
    timezone: str
    task: str
    enabled: bool
    next_run_at: datetime
    last_run_at: datetime | None
