"""Campaigns: draft, check, schedule (an admin approves large ones), pause, resume, cancel, and
watch their progress. The review is the interception report of each variant over the segment."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.analytics.catalog import rule_catalog
from siyu.api.deps import Admin, Analyst, Operator, ScopedSessionDep, SettingsDep
from siyu.api.errors import COMMON_ERRORS
from siyu.api.paths import CampaignId
from siyu.api.routes.sends import SendOut
from siyu.api.schemas import PagePublic
from siyu.campaigns import facade
from siyu.campaigns.abtest import Comparison
from siyu.campaigns.facade import CampaignDraft, CampaignPublic, VariantDraft
from siyu.campaigns.library import MAX_DELAY_MINUTES, MAX_VALUES, MAX_VARIANTS
from siyu.channels import facade as channels
from siyu.channels.prepare import Links, Recipient, SendRequest
from siyu.reports.campaigns import Funnel, campaign_report
from siyu.reports.export import MEDIA_TYPES, report_file
from siyu.segments.facade import member_ids

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"], responses=COMMON_ERRORS)

Status = Literal[
    "draft", "awaiting_approval", "scheduled", "recurring", "running", "testing", "paused", "completed", "cancelled"
]


class VariantIn(BaseModel):
    key: str = Field(max_length=1, description="A, B, C…")
    name: str = Field(default="", max_length=40)
    template_id: str = Field(max_length=32)
    share: int = Field(ge=1, le=100, description="percent of the audience")
    fallbacks: list[str] = Field(
        default_factory=list, max_length=2, description="templates tried in turn for people the one before cannot reach"
    )
    delay_minutes: int = Field(
        default=0, ge=0, le=MAX_DELAY_MINUTES, description="send time: minutes after launch (or the winner's choice)"
    )
    values: dict[str, str | int] = Field(
        default_factory=dict,
        max_length=MAX_VALUES,
        description="this variant's values over the campaign's: a hook product, a path…",
    )


class TestIn(BaseModel):
    percent: int = Field(ge=2, le=90, description="the share of the audience the variants are tested on")
    metric: Literal["ctr", "conversion"] = Field(description="what the winner is picked on")
    hours: int = Field(ge=1, le=72, description="how long after launch the winner is picked")


class RecurrenceIn(BaseModel):
    every: Literal["day", "week"]
    at: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="local time of day, HH:MM")
    weekdays: list[int] = Field(default_factory=list, max_length=7, description="1 (Monday) to 7, for every week")
    until: date | None = Field(default=None, description="the last day it comes round (included)")
    new_only: bool = Field(default=False, description="leave out whoever an earlier occurrence had")


class GuardsIn(BaseModel):
    min_delivery_rate: float | None = Field(
        default=None, ge=0, le=1, description="pause when the delivery rate falls below"
    )
    max_opt_out_rate: float | None = Field(default=None, ge=0, le=1, description="pause when opt-outs rise above")
    min_sent: int = Field(default=500, ge=0, le=10_000_000, description="how many went out before the guards apply")


class CampaignIn(BaseModel):
    name: str = Field(max_length=80)
    description: str = Field(default="", max_length=500)
    segment_id: str | None = Field(default=None, max_length=32)
    variants: list[VariantIn] = Field(min_length=1, max_length=MAX_VARIANTS)
    holdout_id: str | None = Field(default=None, max_length=32)
    scheduled_at: datetime | None = Field(default=None, description="when to send; as soon as scheduled if not given")
    values: dict[str, str | int] = Field(
        default_factory=dict, max_length=MAX_VALUES, description="values templates read as campaign.*"
    )
    guards: GuardsIn = Field(default_factory=GuardsIn, description="auto-pause rules")
    test: TestIn | None = Field(default=None, description="test on a share, then send the rest the winner")
    recurrence: RecurrenceIn | None = Field(default=None, description="send again every day or week")

    def draft(self) -> CampaignDraft:
        return CampaignDraft(
            name=self.name,
            description=self.description,
            segment_id=self.segment_id,
            variants=tuple(
                VariantDraft(v.key, v.template_id, v.share, v.name, tuple(v.fallbacks), v.delay_minutes, v.values)
                for v in self.variants
            ),
            holdout_id=self.holdout_id,
            scheduled_at=self.scheduled_at,
            values=self.values,
            guards=self.guards.model_dump(),
            test=self.test.model_dump() if self.test else {},
            recurrence=self.recurrence.model_dump(mode="json", exclude_none=True) if self.recurrence else {},
        )


class VariantOut(BaseModel):
    key: str
    name: str
    template_id: str
    share: int
    fallbacks: list[str] = Field(default_factory=list)
    delay_minutes: int = 0
    values: dict[str, Any] = Field(default_factory=dict)


class CampaignOut(BaseModel):
    id: str
    name: str
    description: str
    status: Status
    segment_id: str | None
    variants: list[VariantOut]
    holdout_id: str | None
    values: dict[str, Any]
    scheduled_at: datetime | None
    guards: dict[str, Any]
    audience: int = Field(description="people: the segment's size when scheduled, the frozen audience once running")
    needs_approval: bool
    approved_by: str | None
    approved_at: datetime | None
    prepared: int = Field(description="people handed to the send ledger so far")
    launched_at: datetime | None
    finished_at: datetime | None
    problem: str = Field(description="why a run stopped short, if it did")
    source: str = Field(description="the campaign's messages' source in the send ledger")
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    test: dict[str, Any] = Field(description="percent, metric, hours; empty without a test")
    phase: Literal["", "test", "rest"] = Field(description="with a test: sending the test, or the rest the winner")
    winner: str = Field(description="the variant the rest were sent")
    decided_at: datetime | None
    recurrence: dict[str, Any] = Field(description="every, at, weekdays, until, new_only; empty when one-shot")
    parent_id: str | None = Field(description="the recurring campaign this one is an occurrence of")
    next_at: datetime | None = Field(description="a recurring campaign's next time")

    @classmethod
    def of(cls, c: CampaignPublic) -> CampaignOut:
        return cls(
            id=c.id,
            name=c.name,
            description=c.description,
            status=c.status,
            segment_id=c.segment_id,
            variants=[VariantOut(**v) for v in c.variants],
            holdout_id=c.holdout_id,
            values=c.values,
            scheduled_at=c.scheduled_at,
            guards=c.guards,
            audience=c.audience,
            needs_approval=c.needs_approval,
            approved_by=c.approved_by,
            approved_at=c.approved_at,
            prepared=c.prepared,
            launched_at=c.launched_at,
            finished_at=c.finished_at,
            problem=c.problem,
            source=c.source,
            created_by=c.created_by,
            created_at=c.created_at,
            updated_at=c.updated_at,
            test=c.test,
            phase=c.phase,
            winner=c.winner,
            decided_at=c.decided_at,
            recurrence=c.recurrence,
            parent_id=c.parent_id,
            next_at=c.next_at,
        )


class ProblemOut(BaseModel):
    where: str
    message: str


class ReviewOut(BaseModel):
    problems: list[ProblemOut] = Field(description="why it cannot be scheduled; empty when it can")
    audience: int
    variants: dict[str, SendOut] = Field(description="by variant: what its send would do now (nothing is written)")


class ProgressOut(BaseModel):
    audience: int
    prepared: int
    statuses: dict[str, int] = Field(description="the campaign's messages by status")
    skipped: dict[str, int] = Field(description="its skipped messages by reason")
    variants: dict[str, int] = Field(description="people drawn into each variant")
    clicked: int = Field(description="people who opened a link in its messages (each once; bots never)")


class FunnelOut(BaseModel):
    key: str = Field(description="the variant (or total)")
    audience: int
    held_out: int
    skipped: int = Field(description="skipped by the send policy, the holdout apart")
    sent: int
    delivered: int
    clicked: int = Field(description="people who opened its link, each once")
    delivery_rate: float
    click_rate: float = Field(description="clicked / sent")
    converted: int = Field(description="people with an order credited to the campaign")
    orders: int
    revenue_fen: int
    cost_fen: int = Field(description="sent × the channel's cost per message")
    page_visitors: int = Field(description="people who reached a landing page through its links")
    page_forms: int = Field(description="forms sent on those pages")
    conversion_rate: float = Field(description="converted / sent")
    roi: float | None = Field(description="(revenue − cost) / cost; null without a cost")


class ZTestOut(BaseModel):
    key: str
    against: str
    difference: float
    z: float
    p_value: float


class ComparisonOut(BaseModel):
    metric: Literal["click_rate", "conversion_rate"]
    z_tests: list[ZTestOut] = Field(description="each variant against the first: two-proportion z-test")
    chi2: float
    chi2_p_value: float
    degrees_of_freedom: int
    probability_best: dict[str, float] = Field(description="Bayesian probability each variant's rate is the highest")
    significant: bool = Field(description="the chi-square test at alpha")
    alpha: float


class UpliftOut(BaseModel):
    reached: int = Field(description="people sent the campaign")
    reached_buyers: int = Field(description="of them, people who paid an order within the window after launch")
    held_out: int
    held_buyers: int
    reached_rate: float
    held_rate: float
    uplift: float | None = Field(description="reached_rate − held_rate; null without a holdout")


class ChannelRevenueOut(BaseModel):
    channel: str = Field(description="the channel of the credited touch (a fallback's, for whom only it reached)")
    converted: int
    orders: int
    revenue_fen: int


class ReportOut(BaseModel):
    variants: list[FunnelOut]
    total: FunnelOut
    comparison: ComparisonOut = Field(description="click-through of the variants")
    conversion: ComparisonOut = Field(description="conversion of the variants")
    uplift: UpliftOut
    window_hours: int
    attribution: Literal["last_touch", "first_touch"]
    channels: list[ChannelRevenueOut] = Field(description="revenue by the channel of the credited touch")


def _funnel_out(f: Funnel) -> FunnelOut:
    return FunnelOut(
        key=f.key,
        audience=f.audience,
        held_out=f.held_out,
        skipped=f.skipped,
        sent=f.sent,
        delivered=f.delivered,
        clicked=f.clicked,
        delivery_rate=f.delivery_rate,
        click_rate=f.click_rate,
        converted=f.converted,
        orders=f.orders,
        revenue_fen=f.revenue_fen,
        cost_fen=f.cost_fen,
        page_visitors=f.page_visitors,
        page_forms=f.page_forms,
        conversion_rate=f.conversion_rate,
        roi=f.roi,
    )


def _comparison(metric: str, c: Comparison) -> ComparisonOut:
    return ComparisonOut(
        metric=metric,
        z_tests=[
            ZTestOut(key=z.key, against=z.against, difference=z.difference, z=z.z, p_value=z.p_value) for z in c.z_tests
        ],
        chi2=c.chi2,
        chi2_p_value=c.chi2_p_value,
        degrees_of_freedom=c.degrees_of_freedom,
        probability_best=c.probability_best,
        significant=c.significant,
        alpha=c.alpha,
    )


class CampaignSettingsIO(BaseModel):
    approval_threshold: int = Field(ge=0, le=1_000_000_000, description="above this many people an admin approves")
    costs: dict[str, int] = Field(default_factory=dict, description="fen per message, by channel")
    window_hours: int = Field(
        default=168, ge=1, le=24 * 90, description="an order paid this long after a touch converts"
    )
    attribution: Literal["last_touch", "first_touch"] = "last_touch"


def _traits(session: Any, settings: Any) -> set[str]:
    return set(rule_catalog(session, settings.data_dir).traits)


@router.get("", response_model=PagePublic[CampaignOut])
def list_campaigns(
    principal: Analyst,
    session: ScopedSessionDep,
    status: Status | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    parent_id: Annotated[str | None, Query(max_length=32, description="a recurring campaign's occurrences")] = None,
) -> PagePublic[CampaignOut]:
    page = facade.list_campaigns(session, status, cursor, limit, parent_id)
    return PagePublic[CampaignOut](items=[CampaignOut.of(c) for c in page.items], next_cursor=page.next_cursor)


@router.post("", response_model=CampaignOut, status_code=201)
def create_campaign(body: CampaignIn, principal: Operator, session: ScopedSessionDep) -> CampaignOut:
    done = facade.save_campaign(session, body.draft(), principal.actor_id)
    record_audit(session, principal, "campaign.create", target_type="campaign", target_id=done.id)
    return CampaignOut.of(done)


@router.get("/settings", response_model=CampaignSettingsIO)
def get_settings(principal: Analyst, session: ScopedSessionDep) -> CampaignSettingsIO:
    s = facade.get_settings(session)
    return CampaignSettingsIO(
        approval_threshold=s.approval_threshold, costs=s.costs, window_hours=s.window_hours, attribution=s.attribution
    )


@router.put("/settings", response_model=CampaignSettingsIO)
def set_settings(body: CampaignSettingsIO, principal: Admin, session: ScopedSessionDep) -> CampaignSettingsIO:
    s = facade.set_settings(session, body.approval_threshold, body.costs, body.window_hours, body.attribution)
    record_audit(
        session,
        principal,
        "campaign.settings",
        target_type="workspace",
        target_id=principal.workspace_id,
        details={"approval_threshold": s.approval_threshold},
    )
    return CampaignSettingsIO(
        approval_threshold=s.approval_threshold, costs=s.costs, window_hours=s.window_hours, attribution=s.attribution
    )


@router.get("/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign_id: CampaignId, principal: Analyst, session: ScopedSessionDep) -> CampaignOut:
    return CampaignOut.of(facade.get_campaign(session, campaign_id))


@router.put("/{campaign_id}", response_model=CampaignOut)
def update_campaign(
    campaign_id: CampaignId, body: CampaignIn, principal: Operator, session: ScopedSessionDep
) -> CampaignOut:
    """Change a draft (a scheduled campaign is unscheduled first)."""
    done = facade.save_campaign(session, body.draft(), principal.actor_id, campaign_id)
    record_audit(session, principal, "campaign.update", target_type="campaign", target_id=campaign_id)
    return CampaignOut.of(done)


@router.delete("/{campaign_id}", status_code=204)
def delete_campaign(campaign_id: CampaignId, principal: Operator, session: ScopedSessionDep) -> None:
    facade.delete_campaign(session, campaign_id)
    record_audit(session, principal, "campaign.delete", target_type="campaign", target_id=campaign_id)


@router.post("/{campaign_id}/review", response_model=ReviewOut)
def review(campaign_id: CampaignId, principal: Operator, session: ScopedSessionDep, settings: SettingsDep) -> ReviewOut:
    """Before scheduling: every reason it cannot go, and how many people each send-policy rule
    would skip in each variant (a dry run over the segment's members today)."""
    campaign = facade.get_campaign(session, campaign_id)
    problems = facade.readiness(session, campaign_id, _traits(session, settings))
    blocking = {p.where for p in problems}
    variants: dict[str, SendOut] = {}
    audience = 0
    if campaign.segment_id and "segment_id" not in blocking:
        people = member_ids(session, campaign.segment_id)
        audience = len(people)
        drawn = facade.draw(campaign, people)
        links = Links(settings.public_url, settings.secret_key)
        for i, v in enumerate(campaign.variants):
            if f"variants[{i}].template_id" in blocking:
                continue
            request = SendRequest(
                source=campaign.source,
                step="1",
                template_id=str(v["template_id"]),
                recipients=[Recipient(p) for p in drawn.get(str(v["key"]), [])],
                campaign={
                    **campaign.values,
                    **v.get("values", {}),
                    "id": campaign.id,
                    "name": campaign.name,
                    "variant": v["key"],
                },
                holdout_id=campaign.holdout_id,
            )
            variants[str(v["key"])] = SendOut.of(channels.prepare(session, request, links, dry_run=True), "")
    return ReviewOut(
        problems=[ProblemOut(where=p.where, message=p.message) for p in problems], audience=audience, variants=variants
    )


def _move(name: str, campaign_id: str, principal: Any, session: Any, done: CampaignPublic) -> CampaignOut:
    record_audit(
        session,
        principal,
        f"campaign.{name}",
        target_type="campaign",
        target_id=campaign_id,
        details={"status": done.status},
    )
    return CampaignOut.of(done)


@router.post("/{campaign_id}/schedule", response_model=CampaignOut)
def schedule(
    campaign_id: CampaignId, principal: Operator, session: ScopedSessionDep, settings: SettingsDep
) -> CampaignOut:
    """Schedule it, or hold it for an admin's approval when its audience is above the workspace's
    threshold. A campaign that cannot go answers 422 with every reason in ``details.problems``."""
    done = facade.schedule(session, campaign_id, _traits(session, settings))
    return _move("schedule", campaign_id, principal, session, done)


@router.post("/{campaign_id}/approve", response_model=CampaignOut)
def approve(campaign_id: CampaignId, principal: Admin, session: ScopedSessionDep) -> CampaignOut:
    return _move("approve", campaign_id, principal, session, facade.approve(session, campaign_id, principal))


@router.post("/{campaign_id}/unschedule", response_model=CampaignOut)
def unschedule(campaign_id: CampaignId, principal: Operator, session: ScopedSessionDep) -> CampaignOut:
    """Back to draft before it starts (an approver turning it down does the same)."""
    return _move("unschedule", campaign_id, principal, session, facade.unschedule(session, campaign_id))


@router.post("/{campaign_id}/pause", response_model=CampaignOut)
def pause(campaign_id: CampaignId, principal: Operator, session: ScopedSessionDep) -> CampaignOut:
    return _move("pause", campaign_id, principal, session, facade.pause(session, campaign_id))


@router.post("/{campaign_id}/resume", response_model=CampaignOut)
def resume(campaign_id: CampaignId, principal: Operator, session: ScopedSessionDep) -> CampaignOut:
    return _move("resume", campaign_id, principal, session, facade.resume(session, campaign_id))


@router.post("/{campaign_id}/cancel", response_model=CampaignOut)
def cancel(campaign_id: CampaignId, principal: Operator, session: ScopedSessionDep) -> CampaignOut:
    return _move("cancel", campaign_id, principal, session, facade.cancel(session, campaign_id))


class ArmOut(BaseModel):
    key: str
    trials: int = Field(description="people of the test sent this variant")
    successes: int = Field(description="of them, people who clicked (or converted)")


class TestOut(BaseModel):
    metric: Literal["ctr", "conversion"]
    arms: list[ArmOut]
    winner: str = Field(description="the variant a decision now would pick; empty when none is significantly best")
    reason: str
    comparison: ComparisonOut = Field(description="the variants' test sends compared")


class WinnerIn(BaseModel):
    variant: str | None = Field(max_length=1, description="the variant to send the rest; null to send them nothing")


@router.get("/{campaign_id}/test", response_model=TestOut)
def test_standing(campaign_id: CampaignId, principal: Analyst, session: ScopedSessionDep) -> TestOut:
    """A test-then-winner campaign's test as it stands: the variants' rates on the test share,
    the chi-square and the winner it would pick now."""
    campaign = facade.get_campaign(session, campaign_id)
    metric = str(campaign.test.get("metric", "ctr"))
    d = facade.test_standing(session, campaign_id)
    return TestOut(
        metric=metric,
        arms=[ArmOut(key=a.key, trials=a.trials, successes=a.successes) for a in d.comparison.arms],
        winner=d.winner,
        reason=d.reason,
        comparison=_comparison("click_rate" if metric == "ctr" else "conversion_rate", d.comparison),
    )


@router.post("/{campaign_id}/winner", response_model=CampaignOut)
def choose_winner(
    campaign_id: CampaignId, body: WinnerIn, principal: Operator, session: ScopedSessionDep
) -> CampaignOut:
    """While testing: send the people kept back this variant (or, null, nobody more)."""
    done = facade.choose_winner(session, campaign_id, body.variant)
    return _move("winner", campaign_id, principal, session, done)


@router.get("/{campaign_id}/progress", response_model=ProgressOut)
def progress(campaign_id: CampaignId, principal: Analyst, session: ScopedSessionDep) -> ProgressOut:
    p = facade.progress(session, campaign_id)
    return ProgressOut(
        audience=p.audience,
        prepared=p.prepared,
        statuses=p.statuses,
        skipped=p.skipped,
        variants=p.variants,
        clicked=p.clicked,
    )


@router.get("/{campaign_id}/report", response_model=ReportOut)
def report(campaign_id: CampaignId, principal: Analyst, session: ScopedSessionDep) -> ReportOut:
    """Each variant's funnel to conversions and revenue, the uplift over the holdout, and
    whether the variants differ in click-through and in conversion."""
    r = campaign_report(session, campaign_id)
    u = r.uplift
    return ReportOut(
        variants=[_funnel_out(f) for f in r.variants],
        total=_funnel_out(r.total),
        comparison=_comparison("click_rate", r.clicks),
        conversion=_comparison("conversion_rate", r.conversions),
        uplift=UpliftOut(
            reached=u.reached,
            reached_buyers=u.reached_buyers,
            held_out=u.held_out,
            held_buyers=u.held_buyers,
            reached_rate=u.reached_rate,
            held_rate=u.held_rate,
            uplift=u.uplift,
        ),
        window_hours=r.window_hours,
        attribution=r.attribution,
        channels=[ChannelRevenueOut(**c.__dict__) for c in r.channels],
    )


class CheckpointOut(BaseModel):
    hours: int = Field(description="after launch: 3, 6, 12 or 24")
    taken_at: datetime
    metrics: dict[str, float | int | None] = Field(
        description="sent, delivered, undelivered, clicked, opt_outs, delivery_rate, click_rate, opt_out_rate"
    )


@router.get("/{campaign_id}/checkpoints", response_model=list[CheckpointOut])
def checkpoints(campaign_id: CampaignId, principal: Analyst, session: ScopedSessionDep) -> list[CheckpointOut]:
    """The campaign's numbers as they stood 3, 6, 12 and 24 hours after launch."""
    return [
        CheckpointOut(hours=c.hours, taken_at=c.taken_at, metrics=c.metrics)
        for c in facade.checkpoints(session, campaign_id)
    ]


@router.get(
    "/{campaign_id}/report/export",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}
    },
)
def export_report(
    campaign_id: CampaignId,
    principal: Analyst,
    session: ScopedSessionDep,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
) -> Response:
    """The report as a spreadsheet: a row per variant and the total."""
    content = report_file(campaign_report(session, campaign_id), format)
    record_audit(
        session,
        principal,
        "campaign.report_export",
        target_type="campaign",
        target_id=campaign_id,
        details={"format": format},
    )
    return Response(
        content,
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{campaign_id}-report.{format}"'},
    )
