"""Each workspace's batch settings: its RFM model, its lifecycle stage model, and when the batch
runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.analytics.lifecycle import DEFAULT_MODEL, StageModel
from siyu.analytics.rfm import RfmConfig
from siyu.analytics.tables import AnalyticsSettings
from siyu.core.clock import utcnow
from siyu.jobs.scheduler import set_workspace_schedule
from siyu.storage.scoping import require_workspace

SCHEDULED_TASK = "analytics.scheduled_run"
DEFAULT_SCHEDULE = "30 3 * * *"  # every night at 03:30 in the workspace's time zone


@dataclass(frozen=True)
class AnalyticsConfig:
    rfm: RfmConfig
    lifecycle: StageModel
    schedule: str | None  # cron; None: on demand only


def workspace_config(scoped: Session) -> AnalyticsConfig:
    row = scoped.scalar(select(AnalyticsSettings))
    if row is None:
        return AnalyticsConfig(RfmConfig(), DEFAULT_MODEL, DEFAULT_SCHEDULE)
    return AnalyticsConfig(RfmConfig.from_dict(row.rfm), StageModel.from_dict(row.lifecycle), row.schedule)


def save_config(
    scoped: Session,
    *,
    rfm: dict[str, Any],
    lifecycle: dict[str, Any],
    schedule: str | None,
    timezone: str,
    data_dir: Path,
    actor_id: str | None,
) -> AnalyticsConfig:
    """Validate and store; a configuration that is not understood is refused (nothing changes),
    naming the setting at fault."""
    parsed = RfmConfig.from_dict(rfm)
    model = StageModel.from_dict(lifecycle)
    cron = schedule.strip() if schedule and schedule.strip() else None
    set_workspace_schedule(
        scoped,
        name=schedule_name(require_workspace(scoped)),
        cron=cron,
        task=SCHEDULED_TASK,
        timezone=timezone,
        payload={"data_dir": str(data_dir)},
    )
    row = scoped.scalar(select(AnalyticsSettings))
    if row is None:
        row = AnalyticsSettings()
        scoped.add(row)
    row.rfm, row.lifecycle, row.schedule = parsed.to_dict(), model.to_dict(), cron
    row.updated_by, row.updated_at = actor_id, utcnow()
    scoped.flush()
    return AnalyticsConfig(parsed, model, cron)


def install_default_schedule(scoped: Session, timezone: str, data_dir: Path) -> None:
    """The nightly run of a workspace that has not chosen its own schedule."""
    if scoped.scalar(select(AnalyticsSettings.id)) is None:
        set_workspace_schedule(
            scoped,
            name=schedule_name(require_workspace(scoped)),
            cron=DEFAULT_SCHEDULE,
            task=SCHEDULED_TASK,
            timezone=timezone,
            payload={"data_dir": str(data_dir)},
        )


def schedule_name(workspace_id: str) -> str:
    return f"analytics:{workspace_id}"
