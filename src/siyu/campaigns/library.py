"""Campaign drafts: their shape, checked when saved, and whether they can be sent, checked when
scheduled — every reason a campaign cannot go is given, not only the first."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.campaigns.recurrence import recurrence_problems
from siyu.campaigns.tables import Campaign, CampaignSettings
from siyu.channels import facade as channels
from siyu.channels.errors import TemplateNotFoundError
from siyu.core.clock import utcnow
from siyu.core.errors import ConflictError, NotFoundError, ValidationFailedError
from siyu.core.pagination import Page
from siyu.segments import facade as segments
from siyu.storage.paging import newest_first

MAX_VARIANTS = 5
MAX_FALLBACKS = 2
MAX_VALUES = 20
VARIANT_KEY = re.compile(r"^[A-Z]$")
# A schedule may lie this far in the past (the console's clock, the time taken to click).
SCHEDULE_SLACK = timedelta(minutes=5)
DEFAULT_APPROVAL_THRESHOLD = 50_000
MAX_DELAY_MINUTES = 7 * 24 * 60
TEST_METRICS = ("ctr", "conversion")


@dataclass(frozen=True)
class VariantDraft:
    key: str  # A, B, C…
    template_id: str
    share: int  # percent of the audience
    name: str = ""
    # Tried in turn for the people the template before cannot reach (WeCom, else SMS).
    fallbacks: tuple[str, ...] = ()
    # Send time: this long after its phase starts (launch, or the winner's choice).
    delay_minutes: int = 0
    # Over the campaign's values for this variant: a hook product, a path (landing page,
    # mini-program page, WeCom)…, which its templates read as campaign.*.
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CampaignDraft:
    name: str
    segment_id: str | None
    variants: tuple[VariantDraft, ...]
    holdout_id: str | None = None
    scheduled_at: datetime | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    guards: Mapping[str, Any] = field(default_factory=dict)
    test: Mapping[str, Any] = field(default_factory=dict)  # see Campaign.test
    recurrence: Mapping[str, Any] = field(default_factory=dict)  # see Campaign.recurrence


@dataclass(frozen=True)
class Problem:
    where: str  # segment_id, variants[1].template_id, scheduled_at…
    message: str


@dataclass(frozen=True)
class CampaignPublic:
    id: str
    name: str
    description: str
    status: str
    segment_id: str | None
    variants: list[dict[str, Any]]
    holdout_id: str | None
    values: dict[str, Any]
    scheduled_at: datetime | None
    guards: dict[str, Any]
    audience: int
    needs_approval: bool
    approved_by: str | None
    approved_at: datetime | None
    prepared: int
    launched_at: datetime | None
    finished_at: datetime | None
    problem: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    test: dict[str, Any]
    phase: str
    winner: str
    decided_at: datetime | None
    recurrence: dict[str, Any]
    parent_id: str | None
    next_at: datetime | None

    @property
    def source(self) -> str:
        return source_of(self.id)


def source_of(campaign_id: str) -> str:
    """The campaign's messages' source in the channels' ledger."""
    return f"campaign:{campaign_id}"


def campaign_to_public(row: Campaign) -> CampaignPublic:
    return CampaignPublic(
        row.id,
        row.name,
        row.description,
        row.status,
        row.segment_id,
        list(row.variants),
        row.holdout_id,
        dict(row.values),
        row.scheduled_at,
        dict(row.guards),
        row.audience,
        row.needs_approval,
        row.approved_by,
        row.approved_at,
        row.prepared,
        row.launched_at,
        row.finished_at,
        row.problem,
        row.created_by,
        row.created_at,
        row.updated_at,
        dict(row.test),
        row.phase,
        row.winner,
        row.decided_at,
        dict(row.recurrence),
        row.parent_id,
        row.next_at,
    )


def shape_problems(draft: CampaignDraft) -> list[Problem]:
    """What is wrong with the draft itself, whatever the workspace holds."""
    problems: list[Problem] = []
    if not draft.name.strip() or len(draft.name.strip()) > 80:
        problems.append(Problem("name", "a campaign needs a name of 1 to 80 characters"))
    if len(draft.description) > 500:
        problems.append(Problem("description", "at most 500 characters"))
    if not draft.variants:
        problems.append(Problem("variants", "a campaign needs at least one variant"))
    if len(draft.variants) > MAX_VARIANTS:
        problems.append(Problem("variants", f"at most {MAX_VARIANTS} variants"))
    keys = [v.key for v in draft.variants]
    for i, v in enumerate(draft.variants):
        if not VARIANT_KEY.match(v.key):
            problems.append(Problem(f"variants[{i}].key", "a variant's key is one capital letter"))
        elif v.key in keys[:i]:
            problems.append(Problem(f"variants[{i}].key", f"variant {v.key} is named twice"))
        if isinstance(v.share, bool) or not isinstance(v.share, int) or not 1 <= v.share <= 100:
            problems.append(Problem(f"variants[{i}].share", "a variant's share is 1 to 100 percent"))
        if len(v.name) > 40:
            problems.append(Problem(f"variants[{i}].name", "at most 40 characters"))
        chain = [v.template_id, *v.fallbacks]
        if len(v.fallbacks) > MAX_FALLBACKS or len(set(chain)) < len(chain):
            problems.append(Problem(f"variants[{i}].fallbacks", f"at most {MAX_FALLBACKS} other templates, each once"))
    if draft.variants and sum(v.share for v in draft.variants if isinstance(v.share, int)) != 100:
        problems.append(Problem("variants", "the variants' shares add up to 100 percent"))
    problems += _value_problems("values", draft.values)
    for i, v in enumerate(draft.variants):
        problems += _value_problems(f"variants[{i}].values", v.values)
        delay = v.delay_minutes
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= MAX_DELAY_MINUTES:
            problems.append(
                Problem(f"variants[{i}].delay_minutes", "a variant's send time is 0 to 7 days after its start")
            )
    if draft.test:
        problems += test_problems(draft.test, len(draft.variants))
    if draft.recurrence:
        problems += [Problem(where, why) for where, why in recurrence_problems(draft.recurrence)]
    for name, value in draft.guards.items():
        if name in ("min_delivery_rate", "max_opt_out_rate"):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
            ):
                problems.append(Problem(f"guards.{name}", "a rate is a share from 0 to 1"))
        elif name == "min_sent":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000_000:
                problems.append(
                    Problem("guards.min_sent", "how many must have gone before the guards apply: 0 or more")
                )
        else:
            problems.append(
                Problem("guards", f"{name!r} is not a guard (min_delivery_rate, max_opt_out_rate, min_sent)")
            )
    if draft.scheduled_at is not None and draft.scheduled_at.tzinfo is None:
        problems.append(Problem("scheduled_at", "give the time with its time zone"))
    return problems


def _value_problems(where: str, values: Mapping[str, Any]) -> list[Problem]:
    problems = []
    if len(values) > MAX_VALUES:
        problems.append(Problem(where, f"at most {MAX_VALUES} values"))
    for name, value in values.items():
        if not re.match(r"^[a-z_][a-z0-9_]{0,39}$", name):
            problems.append(Problem(where, f"{name!r} is not a value name (a-z, 0-9 and _)"))
        elif not isinstance(value, str | int) or isinstance(value, bool) or len(str(value)) > 200:
            problems.append(Problem(f"{where}.{name}", "a value is a text or a whole number of at most 200 characters"))
    return problems


def test_problems(test: Mapping[str, Any], variants: int) -> list[Problem]:
    """A test-then-winner: a share of the audience, a metric and the hours to wait."""
    problems = []
    if variants < 2:
        problems.append(Problem("test", "a test needs two variants or more"))
    unknown = set(test) - {"percent", "metric", "hours"}
    if unknown:
        problems.append(Problem("test", f"{sorted(unknown)[0]!r} is not a test setting (percent, metric, hours)"))
    percent, hours = test.get("percent"), test.get("hours")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 2 <= percent <= 90:
        problems.append(Problem("test.percent", "the test goes to 2 to 90 percent of the audience"))
    if test.get("metric") not in TEST_METRICS:
        problems.append(Problem("test.metric", f"the winner is picked on {' or '.join(TEST_METRICS)}"))
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 72:
        problems.append(Problem("test.hours", "the winner is picked 1 to 72 hours after launch"))
    return problems


def readiness_problems(scoped: Session, row: Campaign, known_traits: Collection[str] | None) -> list[Problem]:
    """Why the campaign cannot be scheduled now: its segment, templates, channel account,
    holdout and time, each checked against what the workspace holds today. Without
    ``known_traits`` the templates' content is not checked again (saving a template checks it)."""
    problems = shape_problems(draft_of(row))
    if not row.segment_id:
        problems.append(Problem("segment_id", "choose the segment to send to"))
    else:
        try:
            segment = segments.get_segment(scoped, row.segment_id)
        except NotFoundError:
            problems.append(Problem("segment_id", "the segment no longer exists"))
        else:
            if segment.people == 0:
                problems.append(Problem("segment_id", f"the segment {segment.name} has nobody in it"))
    channels_used: set[str] = set()
    for i, v in enumerate(row.variants):
        chain = [("template_id", str(v.get("template_id", "")))]
        chain += [(f"fallbacks[{j}]", str(t)) for j, t in enumerate(v.get("fallbacks", []))]
        for part, template_id in chain:
            where = f"variants[{i}].{part}"
            try:
                template = channels.get_template(scoped, template_id)
            except TemplateNotFoundError:
                problems.append(Problem(where, "the template no longer exists"))
                continue
            if part == "template_id":
                channels_used.add(template.channel)
            content = [] if known_traits is None else channels.check_saved_template(scoped, template.id, known_traits)
            for p in content:
                problems.append(Problem(where, f"template {template.name}: {p.where}: {p.message}"))
            missing = channels.check_account(scoped, template)
            if missing:
                problems.append(Problem(where, missing))
    if len(channels_used) > 1:
        problems.append(Problem("variants", "every variant sends first on the same channel"))
    if row.holdout_id:
        held = {h.id: h for h in segments.list_holdouts(scoped)}
        if row.holdout_id not in held:
            problems.append(Problem("holdout_id", "the holdout no longer exists"))
        elif held[row.holdout_id].kind == "global":
            problems.append(Problem("holdout_id", "the global control group applies to every campaign already"))
    if row.scheduled_at is not None and row.scheduled_at < utcnow() - SCHEDULE_SLACK:
        problems.append(Problem("scheduled_at", "the time to send has passed"))
    return problems


def draft_of(row: Campaign) -> CampaignDraft:
    return CampaignDraft(
        name=row.name,
        segment_id=row.segment_id,
        variants=tuple(
            VariantDraft(
                str(v.get("key", "")),
                str(v.get("template_id", "")),
                v.get("share", 0),
                v.get("name", ""),
                tuple(v.get("fallbacks", [])),
                v.get("delay_minutes", 0),
                dict(v.get("values", {})),
            )
            for v in row.variants
        ),
        holdout_id=row.holdout_id,
        scheduled_at=row.scheduled_at,
        values=dict(row.values),
        description=row.description,
        guards=dict(row.guards),
        test=dict(row.test),
        recurrence=dict(row.recurrence),
    )


def get_campaign_row(scoped: Session, campaign_id: str) -> Campaign:
    row = scoped.scalar(select(Campaign).where(Campaign.id == campaign_id))
    if row is None:
        raise NotFoundError("campaign not found")
    return row


def list_campaigns(
    scoped: Session,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
    parent_id: str | None = None,
) -> Page[CampaignPublic]:
    """The campaigns, newest first; with ``parent_id``, a recurring campaign's occurrences."""
    stmt = select(Campaign)
    if status:
        stmt = stmt.where(Campaign.status == status)
    if parent_id:
        stmt = stmt.where(Campaign.parent_id == parent_id)
    return newest_first(scoped, stmt, Campaign.id, cursor=cursor, limit=limit, convert=campaign_to_public)


def save_campaign(
    scoped: Session, draft: CampaignDraft, actor_id: str | None, campaign_id: str | None = None
) -> CampaignPublic:
    """Create a draft campaign, or change one still in draft."""
    problems = shape_problems(draft)
    if problems:
        raise ValidationFailedError(
            problems[0].message, details={"problems": [{"where": p.where, "message": p.message} for p in problems]}
        )
    if campaign_id is None:
        row = Campaign(created_by=actor_id)
        scoped.add(row)
    else:
        row = get_campaign_row(scoped, campaign_id)
        if row.status != "draft":
            raise ConflictError(f"a {row.status} campaign cannot be changed; cancel it and copy it instead")
    row.name = draft.name.strip()
    row.description = draft.description
    row.segment_id = draft.segment_id or None
    row.variants = [
        {
            "key": v.key,
            "name": v.name,
            "template_id": v.template_id,
            "share": v.share,
            "fallbacks": list(v.fallbacks),
            "delay_minutes": v.delay_minutes,
            "values": dict(v.values),
        }
        for v in draft.variants
    ]
    row.holdout_id = draft.holdout_id or None
    row.values = dict(draft.values)
    row.scheduled_at = draft.scheduled_at
    row.guards = {k: v for k, v in draft.guards.items() if v is not None}
    row.test = dict(draft.test)
    row.recurrence = dict(draft.recurrence)
    scoped.flush()
    return campaign_to_public(row)


def delete_campaign(scoped: Session, campaign_id: str) -> None:
    row = get_campaign_row(scoped, campaign_id)
    if row.status != "draft":
        raise ConflictError("only a draft campaign can be deleted; cancel a scheduled one")
    scoped.delete(row)
    scoped.flush()


def campaign_settings(scoped: Session) -> CampaignSettings:
    row = scoped.scalar(select(CampaignSettings))
    if row is None:
        row = CampaignSettings(approval_threshold=DEFAULT_APPROVAL_THRESHOLD, costs={})
        scoped.add(row)
        scoped.flush()
    return row
