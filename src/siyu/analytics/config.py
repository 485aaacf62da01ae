"""Each workspace's batch settings: its RFM model, its lifecycle stage model, its lead scoring
model, CLV's horizon and the price bands of preferences, and when the batch runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.analytics.clv import HORIZON_DAYS
from siyu.analytics.leads import LeadModel
from siyu.analytics.lifecycle import DEFAULT_MODEL, StageModel
from siyu.analytics.preferences import PRICE_BANDS
from siyu.analytics.rfm import RfmConfig
from siyu.analytics.tables import AnalyticsSettings
from siyu.core.clock import utcnow
from siyu.core.errors import ValidationFailedError
from siyu.jobs.contracts import SchedulePublic
from siyu.jobs.scheduler import list_schedules, set_workspace_schedule
from siyu.rules.catalog import Catalog, check_rule
from siyu.storage.scoping import require_workspace

SCHEDULED_TASK = "analytics.scheduled_run"
DEFAULT_SCHEDULE = "30 3 * * *"  # every night at 03:30 in the workspace's time zone
SEGMENTS_TASK = "analytics.scheduled_segments"
DEFAULT_SEGMENTS_SCHEDULE = "15 * * * *"  # every hour at a quarter past


@dataclass(frozen=True)
class Options:
    """The rest of the model: how far ahead CLV looks, and the price bands of preferences."""

    clv_horizon_days: int = HORIZON_DAYS
    price_bands_fen: tuple[int, ...] = PRICE_BANDS  # upper bounds, rising

    def __post_init__(self) -> None:
        if not _whole(self.clv_horizon_days) or not 1 <= self.clv_horizon_days <= 3650:
            raise ValidationFailedError("clv_horizon_days must be from 1 to 3650", details={"path": "clv_horizon_days"})
        bands = self.price_bands_fen
        if not 1 <= len(bands) <= 10 or any(not _whole(b) or b <= 0 for b in bands):
            raise ValidationFailedError(
                "price_bands_fen must be 1 to 10 whole amounts in fen, above 0", details={"path": "price_bands_fen"}
            )
        if any(a >= b for a, b in pairwise(bands)):
            raise ValidationFailedError(
                f"price_bands_fen must rise: {list(bands)}", details={"path": "price_bands_fen"}
            )

    def to_dict(self) -> dict[str, Any]:
        return {"clv_horizon_days": self.clv_horizon_days, "price_bands_fen": list(self.price_bands_fen)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Options:
        extra = set(data) - {"clv_horizon_days", "price_bands_fen"}
        if extra:
            raise ValidationFailedError("unknown analytics options: " + ", ".join(sorted(extra)))
        bands = data.get("price_bands_fen", PRICE_BANDS)
        if not isinstance(bands, list | tuple):
            raise ValidationFailedError("price_bands_fen must be a list", details={"path": "price_bands_fen"})
        return cls(data.get("clv_horizon_days", HORIZON_DAYS), tuple(bands))


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class AnalyticsConfig:
    rfm: RfmConfig
    lifecycle: StageModel
    schedule: str | None  # cron; None: on demand only
    options: Options = Options()
    leads: LeadModel = field(default_factory=LeadModel)


def workspace_config(scoped: Session) -> AnalyticsConfig:
    row = scoped.scalar(select(AnalyticsSettings))
    if row is None:
        return AnalyticsConfig(RfmConfig(), DEFAULT_MODEL, DEFAULT_SCHEDULE)
    return AnalyticsConfig(
        RfmConfig.from_dict(row.rfm),
        StageModel.from_dict(row.lifecycle),
        row.schedule,
        Options.from_dict(row.options),
        LeadModel.from_dict(row.leads),
    )


def save_config(
    scoped: Session,
    *,
    rfm: dict[str, Any],
    lifecycle: dict[str, Any],
    options: dict[str, Any],
    leads: dict[str, Any],
    schedule: str | None,
    timezone: str,
    data_dir: Path,
    actor_id: str | None,
    catalog: Catalog | None = None,
) -> AnalyticsConfig:
    """Validate and store; a configuration that is not understood is refused (nothing changes),
    naming the setting at fault. With ``catalog``, lead scoring's trait conditions must name
    traits people have."""
    parsed = RfmConfig.from_dict(rfm)
    model = StageModel.from_dict(lifecycle)
    extra = Options.from_dict(options)
    scoring = LeadModel.from_dict(leads)
    if catalog is not None:
        _check_trait_names(scoring, catalog)
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
    row.rfm, row.lifecycle, row.options, row.schedule = parsed.to_dict(), model.to_dict(), extra.to_dict(), cron
    row.leads, row.updated_by, row.updated_at = scoring.to_dict(), actor_id, utcnow()
    scoped.flush()
    return AnalyticsConfig(parsed, model, cron, extra, scoring)


def _check_trait_names(model: LeadModel, catalog: Catalog) -> None:
    for i, rule in enumerate(model.rules):
        if (node := rule.condition) is not None:
            try:
                check_rule(node, catalog)
            except ValidationFailedError as exc:
                problem = exc.details["problems"][0]
                where = f"rules[{i}].when.{problem['path']}".rstrip(".")
                raise ValidationFailedError(f"{where}: {problem['message']}", details={"path": where}) from None


def install_default_schedule(scoped: Session, timezone: str, data_dir: Path) -> None:
    """The nightly run and the hourly refresh of segments, for a workspace that has not chosen
    its own schedules."""
    if scoped.scalar(select(AnalyticsSettings.id)) is None:
        set_workspace_schedule(
            scoped,
            name=schedule_name(require_workspace(scoped)),
            cron=DEFAULT_SCHEDULE,
            task=SCHEDULED_TASK,
            timezone=timezone,
            payload={"data_dir": str(data_dir)},
        )
    if segments_schedule(scoped) is None and not _has_schedule(
        scoped, segments_schedule_name(require_workspace(scoped))
    ):
        set_segments_schedule(scoped, DEFAULT_SEGMENTS_SCHEDULE, timezone, data_dir)


def set_segments_schedule(scoped: Session, cron: str | None, timezone: str, data_dir: Path) -> SchedulePublic | None:
    """When dynamic segments are refreshed between full runs (cron in the workspace's time zone;
    None: only after full runs and on demand)."""
    cron = cron.strip() if cron and cron.strip() else None
    return set_workspace_schedule(
        scoped,
        name=segments_schedule_name(require_workspace(scoped)),
        cron=cron,
        task=SEGMENTS_TASK,
        timezone=timezone,
        payload={"data_dir": str(data_dir)},
    )


def segments_schedule(scoped: Session) -> SchedulePublic | None:
    """The segments' refresh schedule, when it is on."""
    name = segments_schedule_name(require_workspace(scoped))
    return next((s for s in list_schedules(scoped) if s.name == name and s.enabled), None)


def _has_schedule(scoped: Session, name: str) -> bool:
    return any(s.name == name for s in list_schedules(scoped))


def segments_schedule_name(workspace_id: str) -> str:
    return f"segments:{workspace_id}"


def schedule_name(workspace_id: str) -> str:
    return f"analytics:{workspace_id}"
