"""The batch analytics engine: its settings (the RFM model, the schedule), runs with their step
log, and the RFM matrix the last run left."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.accounts.facade import get_workspace
from siyu.analytics import facade
from siyu.analytics.facade import AnalyticsConfig, RunPublic
from siyu.api.deps import Admin, Analyst, DbDep, Operator, ScopedSessionDep, SettingsDep
from siyu.api.errors import COMMON_ERRORS
from siyu.storage.scoping import Scope

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"], responses=COMMON_ERRORS)


class RunOut(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    trigger: Literal["manual", "schedule"]
    scope: Literal["full", "segments"]
    requested_by: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    as_of: datetime | None
    steps: list[dict[str, Any]] = Field(description="each finished step: name, ms, and its row counts")
    duration_ms: int
    error: str | None

    @classmethod
    def of(cls, run: RunPublic) -> RunOut:
        return cls.model_validate(run.__dict__)


class SplitIO(BaseModel):
    by: Literal["score", "mean"]
    at_least: int


class RfmIO(BaseModel):
    window_days: int
    scoring: Literal["quintile", "thresholds"]
    thresholds: dict[str, list[int]] = Field(
        description="recency (days), frequency (orders), monetary (fen): four rising cut points each"
    )
    split: dict[str, SplitIO] = Field(description="recency, frequency, monetary: how each is called high")


class ConditionIO(BaseModel):
    metric: Literal[
        "purchases_total",
        "purchases_in_window",
        "spend_in_window_fen",
        "days_since_last_purchase",
        "days_since_first_purchase",
        "days_since_last_seen",
    ]
    op: Literal[">", ">=", "<", "<=", "=", "!="]
    value: int


class StageIO(BaseModel):
    code: str
    name: str
    when: list[ConditionIO] = Field(description="all must hold; empty only for the last stage, which takes the rest")


class LifecycleIO(BaseModel):
    window_days: int
    stages: list[StageIO] = Field(description="in order: a person is in the first stage whose conditions hold")


class OptionsIO(BaseModel):
    clv_horizon_days: int = Field(description="how far ahead CLV counts expected purchases")
    price_bands_fen: list[int] = Field(description="rising upper bounds of the preference price bands, in fen")


class PointRuleIO(BaseModel):
    event: str | None = Field(default=None, description="a track event's name")
    type: Literal["track", "page", "screen", "identify"] | None = Field(
        default=None, description="or every event of a type"
    )
    when: dict[str, Any] | None = Field(
        default=None, description="or a condition on traits (the rule language: trait, and, or, not)"
    )
    points: int = Field(description="per occurrence, negative for what counts against; halved every half-life")


class GradeIO(BaseModel):
    name: str
    at_least: int


class LeadsIO(BaseModel):
    half_life_days: int
    rules: list[PointRuleIO]
    grades: list[GradeIO] = Field(description="highest first; below every threshold: the last grade")


class SettingsIO(BaseModel):
    rfm: RfmIO
    lifecycle: LifecycleIO
    options: OptionsIO
    leads: LeadsIO
    schedule: str | None = Field(description="cron in the workspace's time zone; null: only on demand")


def _settings_out(config: AnalyticsConfig) -> SettingsIO:
    return SettingsIO(
        rfm=RfmIO.model_validate(config.rfm.to_dict()),
        lifecycle=LifecycleIO.model_validate(config.lifecycle.to_dict()),
        options=OptionsIO.model_validate(config.options.to_dict()),
        leads=LeadsIO.model_validate(config.leads.to_dict()),
        schedule=config.schedule,
    )


@router.get("/settings", response_model=SettingsIO)
def get_settings(principal: Analyst, session: ScopedSessionDep) -> SettingsIO:
    """The RFM model (window, scoring, thresholds, how each dimension splits high from low) and
    when the batch runs."""
    return _settings_out(facade.get_config(session))


@router.put("/settings", response_model=SettingsIO)
def put_settings(
    body: SettingsIO, principal: Admin, session: ScopedSessionDep, db: DbDep, settings: SettingsDep
) -> SettingsIO:
    """Change the models and schedule; a model that cannot be understood is refused (422, naming
    the setting in ``details.path``) and nothing changes. Takes effect at the next run."""
    with db.transaction(Scope.unscoped_system()) as system:
        timezone = get_workspace(system, principal.workspace_id).timezone
    saved = facade.save_config(
        session,
        rfm=body.rfm.model_dump(),
        lifecycle=body.lifecycle.model_dump(),
        options=body.options.model_dump(),
        leads=body.leads.model_dump(exclude_none=True),
        schedule=body.schedule,
        timezone=timezone,
        data_dir=settings.data_dir,
        actor_id=principal.actor_id,
        catalog=facade.rule_catalog(session, settings.data_dir),
    )
    out = _settings_out(saved)
    record_audit(session, principal, "analytics.settings", target_type="analytics_settings", details=out.model_dump())
    return out


@router.get("/runs", response_model=list[RunOut])
def list_runs(principal: Analyst, session: ScopedSessionDep) -> list[RunOut]:
    """Recent batch runs, newest first, with each one's step log."""
    return [RunOut.of(r) for r in facade.list_runs(session)]


@router.post("/runs", response_model=RunOut, status_code=202)
def start_run(principal: Operator, session: ScopedSessionDep, settings: SettingsDep) -> RunOut:
    """Run the batch now (queued for a worker). 409 while another run is queued or running."""
    run = facade.request_run(session, principal.actor_id, settings.data_dir)
    record_audit(session, principal, "analytics.run", target_type="analytics_run", target_id=run.id)
    return RunOut.of(run)


@router.get("/runs/{run_id}", response_model=RunOut)
def get_run(run_id: str, principal: Analyst, session: ScopedSessionDep) -> RunOut:
    return RunOut.of(facade.get_run(session, run_id))


class RfmGroupOut(BaseModel):
    group: str
    name: str
    people: int
    monetary_fen: int
    people_share: float
    monetary_share: float


class RfmCellOut(BaseModel):
    r_score: int
    f_score: int
    people: int
    monetary_fen: int


class RfmMatrixOut(BaseModel):
    as_of: datetime | None
    people: int
    monetary_fen: int
    groups: list[RfmGroupOut]
    cells: list[RfmCellOut]


@router.get("/rfm", response_model=RfmMatrixOut)
def rfm_matrix(principal: Analyst, session: ScopedSessionDep) -> RfmMatrixOut:
    """The eight RFM groups (people, spend and their shares) and the recency × frequency matrix,
    as the last run left them."""
    return RfmMatrixOut.model_validate(facade.rfm_matrix(session), from_attributes=True)


class StageCountOut(BaseModel):
    code: str
    name: str
    people: int
    share: float


class StageMoveOut(BaseModel):
    from_stage: str | None
    to_stage: str
    people: int


class LifecycleOut(BaseModel):
    as_of: datetime | None
    people: int
    stages: list[StageCountOut]
    moves: list[StageMoveOut] = Field(description="who changed stage in the last run, from → to")


@router.get("/lifecycle", response_model=LifecycleOut)
def lifecycle_summary(principal: Analyst, session: ScopedSessionDep) -> LifecycleOut:
    """How many people are in each stage of the model, and who moved between stages in the last run."""
    return LifecycleOut.model_validate(facade.lifecycle_summary(session), from_attributes=True)


class ClvBandOut(BaseModel):
    label: str = Field(description="how likely still active: <25%, 25-50%, 50-75%, 75%+")
    people: int
    expected_purchases: float
    expected_value_fen: int


class ClvSummaryOut(BaseModel):
    as_of: datetime | None
    horizon_days: int
    people: int
    expected_purchases: float
    expected_value_fen: int
    bands: list[ClvBandOut]


@router.get("/clv", response_model=ClvSummaryOut)
def clv_summary(principal: Analyst, session: ScopedSessionDep) -> ClvSummaryOut:
    """Buyers' expected purchases and value over the next ``horizon_days`` (BG/NBD and Gamma-Gamma
    as the last run fitted them), in all and by the probability they are still active."""
    return ClvSummaryOut.model_validate(facade.clv_summary(session), from_attributes=True)


class GradeCountOut(BaseModel):
    grade: str
    people: int


class LeadSummaryOut(BaseModel):
    as_of: datetime | None
    people: int
    grades: list[GradeCountOut]


@router.get("/leads", response_model=LeadSummaryOut)
def lead_summary(principal: Analyst, session: ScopedSessionDep) -> LeadSummaryOut:
    """How many people are in each lead grade of the model, as the last run scored them."""
    return LeadSummaryOut.model_validate(facade.lead_summary(session), from_attributes=True)
