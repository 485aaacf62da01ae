"""Batch analytics, as the edges and other domains use it: settings, runs and the results.

Every function takes a workspace-scoped session. Runs are queued here and executed by workers
(:mod:`siyu.analytics.tasks`); results are read from the store, never from the batch engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import siyu.analytics.tasks  # noqa: F401 - registers the batch jobs, which schedules name
from siyu.accounts.facade import get_workspace
from siyu.analytics import config, preview, runs
from siyu.analytics.catalog import option_names, rule_catalog
from siyu.analytics.config import (
    AnalyticsConfig,
    install_default_schedule,
    save_config,
    segments_schedule,
    set_segments_schedule,
)
from siyu.analytics.preview import RulePreview
from siyu.analytics.rfm import GROUP_NAMES, GROUPS
from siyu.analytics.runs import RunPublic
from siyu.analytics.tables import (
    AnalyticsRun,
    ProfileClv,
    ProfileLeadScore,
    ProfileLifecycle,
    ProfilePreferences,
    ProfileRfm,
)
from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError
from siyu.storage.scoping import require_workspace

__all__ = [
    "AnalyticsConfig",
    "RulePreview",
    "RunPublic",
    "install_default_schedule",
    "option_names",
    "rule_catalog",
    "save_config",
    "segments_schedule",
    "set_segments_schedule",
]


@dataclass(frozen=True)
class RfmGroupCount:
    group: str
    name: str  # 重要价值 …
    people: int
    monetary_fen: int
    people_share: float
    monetary_share: float


@dataclass(frozen=True)
class RfmCell:
    r_score: int
    f_score: int
    people: int
    monetary_fen: int


@dataclass(frozen=True)
class RfmMatrix:
    as_of: datetime | None  # of the last run that finished
    people: int
    monetary_fen: int
    groups: list[RfmGroupCount]
    cells: list[RfmCell]  # recency score × frequency score


@dataclass(frozen=True)
class StageCount:
    code: str
    name: str
    people: int
    share: float


@dataclass(frozen=True)
class StageMove:
    from_stage: str | None
    to_stage: str
    people: int


@dataclass(frozen=True)
class LifecycleSummary:
    as_of: datetime | None
    people: int
    stages: list[StageCount]  # in the model's order (then any stage a past model left)
    moves: list[StageMove]  # in the last run


@dataclass(frozen=True)
class ClvBand:
    label: str  # the probability still active: "<25%", "25-50%", "50-75%", "75%+"
    people: int
    expected_purchases: float
    expected_value_fen: int


@dataclass(frozen=True)
class ClvSummary:
    as_of: datetime | None
    horizon_days: int
    people: int
    expected_purchases: float
    expected_value_fen: int
    bands: list[ClvBand]


@dataclass(frozen=True)
class GradeCount:
    grade: str
    people: int


@dataclass(frozen=True)
class LeadSummary:
    as_of: datetime | None
    people: int
    grades: list[GradeCount]  # in the model's order (then any grade a past model left)


@dataclass(frozen=True)
class ProfileRfmPublic:
    last_purchase_at: datetime
    recency_days: int  # as of now
    frequency: int
    monetary_fen: int
    r_score: int
    f_score: int
    m_score: int
    rfm_group: str
    rfm_group_name: str


def get_config(scoped: Session) -> AnalyticsConfig:
    return config.workspace_config(scoped)


def request_run(scoped: Session, actor_id: str | None, data_dir: Path, scope: str = "full") -> RunPublic:
    """Queue a batch run: ``full``, or ``segments`` (the snapshots brought up to date and the
    dynamic segments refreshed, reading the other results as the last full run left them)."""
    return runs.request_run(scoped, actor_id, data_dir, scope=scope)


def preview_rule(scoped: Session, data_dir: Path, rule: dict[str, Any]) -> RulePreview:
    """How many people ``rule`` selects now, of how many, and a few of them; the rule is checked
    as on save (ValidationFailedError with the place of each problem)."""
    workspace_id = require_workspace(scoped)
    timezone = get_workspace(scoped, workspace_id).timezone
    return preview.preview_rule(
        scoped, data_dir, workspace_id, rule, rule_catalog(scoped, data_dir), timezone, utcnow()
    )


def list_runs(scoped: Session, limit: int = 20) -> list[RunPublic]:
    return runs.list_runs(scoped, limit)


def get_run(scoped: Session, run_id: str) -> RunPublic:
    row = scoped.get(AnalyticsRun, run_id)
    if row is None:
        raise NotFoundError("batch run not found")
    return runs.run_to_public(row)


def rfm_matrix(scoped: Session) -> RfmMatrix:
    """Counts and spend per group and per (R, F) cell of the results as they stand."""
    by_group = {
        g: (int(n), int(m or 0))
        for g, n, m in scoped.execute(
            select(ProfileRfm.rfm_group, func.count(), func.sum(ProfileRfm.monetary_fen)).group_by(ProfileRfm.rfm_group)
        )
    }
    people = sum(n for n, _ in by_group.values())
    spend = sum(m for _, m in by_group.values())
    groups = [
        RfmGroupCount(
            code,
            GROUP_NAMES[code],
            by_group.get(code, (0, 0))[0],
            by_group.get(code, (0, 0))[1],
            by_group.get(code, (0, 0))[0] / people if people else 0.0,
            by_group.get(code, (0, 0))[1] / spend if spend else 0.0,
        )
        for code in GROUPS.values()
    ]
    cells = [
        RfmCell(int(r), int(f), int(n), int(m or 0))
        for r, f, n, m in scoped.execute(
            select(ProfileRfm.r_score, ProfileRfm.f_score, func.count(), func.sum(ProfileRfm.monetary_fen))
            .group_by(ProfileRfm.r_score, ProfileRfm.f_score)
            .order_by(ProfileRfm.r_score, ProfileRfm.f_score)
        )
    ]
    last = runs.last_done_run(scoped, full=True)
    return RfmMatrix(last.as_of if last is not None else None, people, spend, groups, cells)


@dataclass(frozen=True)
class ProfileAnalytics:
    """What the last runs computed for one person: their stage and RFM (None when they have none)."""

    stage: str | None
    stage_name: str | None
    stage_since: datetime | None
    previous_stage_name: str | None
    rfm: ProfileRfmPublic | None
    clv: ProfileClvPublic | None
    preferences: ProfilePreferencesPublic | None
    lead_score: float | None
    lead_grade: str | None


@dataclass(frozen=True)
class ProfilePreferencesPublic:
    top_category: str | None
    top_brand: str | None
    price_band: str | None  # in yuan: "<50", "50-150" … "600+"
    top_platform: str | None
    top_hour: int | None  # local hour of day
    median_interval_days: float | None
    next_purchase_day: date | None


@dataclass(frozen=True)
class ProfileClvPublic:
    p_alive: float
    expected_purchases: float  # over horizon_days
    expected_value_fen: int
    horizon_days: int


def profile_analytics(scoped: Session, profile_id: str) -> ProfileAnalytics:
    row = scoped.get(ProfileLifecycle, profile_id)
    lead = scoped.get(ProfileLeadScore, profile_id)
    model = config.workspace_config(scoped).lifecycle if row is not None else None
    return ProfileAnalytics(
        row.stage if row is not None else None,
        model.name_of(row.stage) if row is not None and model is not None else None,
        row.since if row is not None else None,
        model.name_of(row.previous_stage) if row is not None and model is not None and row.previous_stage else None,
        profile_rfm(scoped, profile_id),
        profile_clv(scoped, profile_id),
        profile_preferences(scoped, profile_id),
        lead.score if lead is not None else None,
        lead.grade if lead is not None else None,
    )


def profile_preferences(scoped: Session, profile_id: str) -> ProfilePreferencesPublic | None:
    row = scoped.get(ProfilePreferences, profile_id)
    if row is None:
        return None
    return ProfilePreferencesPublic(
        row.top_category,
        row.top_brand,
        row.price_band,
        row.top_platform,
        row.top_hour,
        row.median_interval_days,
        row.next_purchase_day,
    )


def profile_clv(scoped: Session, profile_id: str) -> ProfileClvPublic | None:
    row = scoped.get(ProfileClv, profile_id)
    if row is None:
        return None
    return ProfileClvPublic(row.p_alive, row.expected_purchases, row.expected_value_fen, _clv_horizon(scoped))


def _clv_horizon(scoped: Session) -> int:
    """The horizon the stored CLV looks over: the last run's (the settings may have changed since)."""
    last = runs.last_done_run(scoped, full=True)
    step = next((s for s in (last.steps if last is not None else []) if s.get("name") == "clv"), None)
    if step is not None and isinstance(step.get("horizon_days"), int):
        return int(step["horizon_days"])
    return config.workspace_config(scoped).options.clv_horizon_days


def profile_rfm(scoped: Session, profile_id: str) -> ProfileRfmPublic | None:
    row = scoped.get(ProfileRfm, profile_id)
    if row is None:
        return None
    return ProfileRfmPublic(
        row.last_purchase_at,
        (utcnow() - row.last_purchase_at).days,
        row.frequency,
        row.monetary_fen,
        row.r_score,
        row.f_score,
        row.m_score,
        row.rfm_group,
        GROUP_NAMES[row.rfm_group],
    )


def lifecycle_summary(scoped: Session) -> LifecycleSummary:
    model = config.workspace_config(scoped).lifecycle
    counts: dict[str, int] = {
        stage: int(n)
        for stage, n in scoped.execute(select(ProfileLifecycle.stage, func.count()).group_by(ProfileLifecycle.stage))
    }
    total = sum(counts.values())
    codes = [s.code for s in model.stages] + sorted(set(counts) - {s.code for s in model.stages})
    stages = [
        StageCount(c, model.name_of(c), int(counts.get(c, 0)), counts.get(c, 0) / total if total else 0.0)
        for c in codes
    ]
    last = runs.last_done_run(scoped, full=True)
    moves: list[StageMove] = []
    if last is not None:
        moves = [
            StageMove(previous, stage, int(n))
            for previous, stage, n in scoped.execute(
                select(ProfileLifecycle.previous_stage, ProfileLifecycle.stage, func.count())
                .where(ProfileLifecycle.run_id == last.id)
                .group_by(ProfileLifecycle.previous_stage, ProfileLifecycle.stage)
                .order_by(func.count().desc())
            )
        ]
    return LifecycleSummary(last.as_of if last is not None else None, total, stages, moves)


_ALIVE_BANDS = ((0.0, 0.25, "<25%"), (0.25, 0.5, "25-50%"), (0.5, 0.75, "50-75%"), (0.75, 1.01, "75%+"))


def clv_summary(scoped: Session) -> ClvSummary:
    """The buyers' expected purchases and value over the horizon, in all and by how likely they are
    still active, as the last run left them."""
    bands = []
    for low, high, label in _ALIVE_BANDS:
        n, purchases, value = scoped.execute(
            select(
                func.count(), func.sum(ProfileClv.expected_purchases), func.sum(ProfileClv.expected_value_fen)
            ).where(ProfileClv.p_alive >= low, ProfileClv.p_alive < high)
        ).one()
        bands.append(ClvBand(label, int(n), float(purchases or 0.0), int(value or 0)))
    last = runs.last_done_run(scoped, full=True)
    return ClvSummary(
        last.as_of if last is not None else None,
        _clv_horizon(scoped),
        sum(b.people for b in bands),
        sum(b.expected_purchases for b in bands),
        sum(b.expected_value_fen for b in bands),
        bands,
    )


def lead_summary(scoped: Session) -> LeadSummary:
    names = [g.name for g in config.workspace_config(scoped).leads.grades]
    counts: dict[str, int] = {
        grade: int(n)
        for grade, n in scoped.execute(select(ProfileLeadScore.grade, func.count()).group_by(ProfileLeadScore.grade))
    }
    order = names + sorted(set(counts) - set(names))
    last = runs.last_done_run(scoped, full=True)
    return LeadSummary(
        last.as_of if last is not None else None,
        sum(counts.values()),
        [GradeCount(g, counts.get(g, 0)) for g in order],
    )
