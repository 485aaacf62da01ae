"""The campaigns domain's public face: drafts, their life, their progress."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.campaigns import checkpoints as guards
from siyu.campaigns import library, lifecycle, winner
from siyu.campaigns.library import CampaignDraft, CampaignPublic, Problem, VariantDraft, source_of
from siyu.campaigns.run import WAITING, variant_of
from siyu.campaigns.tables import CampaignRecipient, CampaignSettings
from siyu.channels import facade as channels
from siyu.core.errors import ValidationFailedError
from siyu.tracking import facade as tracking

__all__ = ["CampaignDraft", "CampaignPublic", "Problem", "VariantDraft", "source_of"]

list_campaigns = library.list_campaigns
save_campaign = library.save_campaign
delete_campaign = library.delete_campaign
schedule = lifecycle.schedule
approve = lifecycle.approve
unschedule = lifecycle.unschedule
pause = lifecycle.pause
resume = lifecycle.resume
cancel = lifecycle.cancel
checkpoints = guards.checkpoints
CheckpointPublic = guards.CheckpointPublic
choose_winner = winner.choose_winner
Decision = winner.Decision


def test_standing(scoped: Session, campaign_id: str) -> Decision:
    """How the test stands now: each variant's rate, the comparison, and the winner it would pick."""
    row = library.get_campaign_row(scoped, campaign_id)
    metric = str(row.test.get("metric", "ctr"))
    if row.launched_at is None:
        return winner.judge([])
    return winner.judge(winner.test_arms(scoped, row, metric))


def get_campaign(scoped: Session, campaign_id: str) -> CampaignPublic:
    return library.campaign_to_public(library.get_campaign_row(scoped, campaign_id))


def draw(campaign: CampaignPublic, people: Sequence[str]) -> dict[str, list[str]]:
    """Which variant each of ``people`` is drawn into, as the run draws them."""
    drawn: dict[str, list[str]] = {}
    for p in people:
        drawn.setdefault(variant_of(campaign.id, campaign.variants, p), []).append(p)
    return drawn


def readiness(scoped: Session, campaign_id: str, known_traits: set[str]) -> list[Problem]:
    return library.readiness_problems(scoped, library.get_campaign_row(scoped, campaign_id), known_traits)


@dataclass(frozen=True)
class Progress:
    """How far the campaign has got: its audience, how many were handed to the ledger, the
    ledger's messages by status and its skipped ones by reason, and people per variant."""

    audience: int
    prepared: int
    statuses: dict[str, int]
    skipped: dict[str, int]
    variants: dict[str, int]
    clicked: int  # people who opened a link in the campaign's messages


def progress(scoped: Session, campaign_id: str) -> Progress:
    row = library.get_campaign_row(scoped, campaign_id)
    summary = channels.source_summary(scoped, source_of(row.id))
    per_variant = scoped.execute(
        select(CampaignRecipient.variant, func.count())
        .where(CampaignRecipient.campaign_id == row.id)
        .group_by(CampaignRecipient.variant)
    )
    return Progress(
        row.audience,
        row.prepared,
        summary.statuses,
        summary.skipped,
        {v: int(n) for v, n in per_variant},
        tracking.people_who_clicked(scoped, source_of(row.id)),
    )


ATTRIBUTION_MODELS = ("last_touch", "first_touch")


@dataclass(frozen=True)
class Settings:
    approval_threshold: int
    costs: dict[str, int]  # fen per message, by channel
    window_hours: int  # an order paid this long after a touch converts
    attribution: str  # last_touch | first_touch


def _settings(row: CampaignSettings) -> Settings:
    return Settings(row.approval_threshold, dict(row.costs), row.window_hours, row.attribution)


def get_settings(scoped: Session) -> Settings:
    return _settings(library.campaign_settings(scoped))


def set_settings(
    scoped: Session,
    approval_threshold: int,
    costs: dict[str, int],
    window_hours: int = 168,
    attribution: str = "last_touch",
) -> Settings:
    if attribution not in ATTRIBUTION_MODELS:
        raise ValidationFailedError(
            f"attribution is one of {', '.join(ATTRIBUTION_MODELS)}", details={"path": "attribution"}
        )
    if not 1 <= window_hours <= 24 * 90:
        raise ValidationFailedError("the attribution window is 1 hour to 90 days", details={"path": "window_hours"})
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in costs.values()):
        raise ValidationFailedError("a cost is a whole number of fen, 0 or more", details={"path": "costs"})
    row = library.campaign_settings(scoped)
    row.approval_threshold, row.costs = approval_threshold, dict(costs)
    row.window_hours, row.attribution = window_hours, attribution
    scoped.flush()
    return _settings(row)


def audience_by_variant(scoped: Session, campaign_id: str) -> dict[str, list[str]]:
    """The frozen audience: each variant's people (the people a test kept back under its winner,
    once there is one, else under ``*``)."""
    row = library.get_campaign_row(scoped, campaign_id)
    out: dict[str, list[str]] = {}
    rows = scoped.execute(
        select(CampaignRecipient.variant, CampaignRecipient.profile_id).where(
            CampaignRecipient.campaign_id == campaign_id
        )
    )
    for variant, profile_id in rows:
        out.setdefault(row.winner if variant == WAITING and row.winner else variant, []).append(profile_id)
    return out
