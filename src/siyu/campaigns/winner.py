"""Test then send the winner: ``hours`` after launch, the variants the test share was sent are
compared on click-through or conversion; a variant is the winner only when the chi-square test
says the variants differ (p < 0.05) and it has the best rate — then the people kept back are
sent it. When no variant is significantly best the campaign waits for an operator to choose
one (or to cancel the rest), the reason shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.campaigns.abtest import Arm, Comparison, compare
from siyu.campaigns.attribution import attribute
from siyu.campaigns.library import (
    CampaignPublic,
    campaign_settings,
    campaign_to_public,
    get_campaign_row,
    source_of,
)
from siyu.campaigns.lifecycle import enqueue_run
from siyu.campaigns.run import WAITING
from siyu.campaigns.tables import Campaign, CampaignRecipient
from siyu.channels import facade as channels
from siyu.core.clock import utcnow
from siyu.core.errors import ConflictError, ValidationFailedError
from siyu.tracking import facade as tracking

ALPHA = 0.05


@dataclass(frozen=True)
class Decision:
    winner: str  # "" when none is significantly best
    comparison: Comparison
    reason: str


def test_arms(scoped: Session, row: Campaign, metric: str) -> list[Arm]:
    """Each variant's people who were sent it (trials) and who clicked or converted (successes)."""
    source = source_of(row.id)
    status = channels.statuses_by_profile(scoped, source)
    sent: dict[str, list[str]] = {str(v["key"]): [] for v in row.variants}
    for profile_id, variant in scoped.execute(
        select(CampaignRecipient.profile_id, CampaignRecipient.variant).where(
            CampaignRecipient.campaign_id == row.id, CampaignRecipient.variant != WAITING
        )
    ):
        if variant in sent and status.get(profile_id, ("", ""))[0] in channels.WENT_OUT:
            sent[variant].append(profile_id)
    if metric == "ctr":
        succeeded = tracking.clickers(scoped, source)
    else:
        settings = campaign_settings(scoped)
        assert row.launched_at is not None
        credit = attribute(
            scoped,
            source=source,
            launched_at=row.launched_at,
            variant_of={p: key for key, people in sent.items() for p in people},
            held_out=[],
            window=timedelta(hours=settings.window_hours),
            model=settings.attribution,
        )
        succeeded = {p for c in credit.by_variant.values() for p in c.people}
    return [Arm(key, len(people), sum(p in succeeded for p in people)) for key, people in sent.items()]


def judge(arms: list[Arm]) -> Decision:
    comparison = compare(arms, ALPHA)
    if not comparison.significant:
        return Decision(
            "", comparison, f"no variant is significantly best yet (chi-square p = {comparison.chi2_p_value:.3f})"
        )
    best = max(arms, key=lambda a: (a.rate, comparison.probability_best[a.key]))
    return Decision(best.key, comparison, f"variant {best.key} is best (chi-square p = {comparison.chi2_p_value:.4f})")


def _send_rest(scoped: Session, row: Campaign, winner: str, why: str) -> None:
    row.winner, row.decided_at = winner, utcnow()
    row.phase, row.cursor, row.status = "rest", "", "running"
    row.problem = why
    enqueue_run(scoped, row)


def decide(scoped: Session, campaign_id: str) -> Decision | None:
    """The job ``hours`` after launch: pick the winner when one is significantly best."""
    row = get_campaign_row(scoped, campaign_id)
    if row.status != "testing" or row.winner:
        return None  # paused, cancelled, or decided by an operator already
    decision = judge(test_arms(scoped, row, str(row.test["metric"])))
    if decision.winner:
        _send_rest(scoped, row, decision.winner, f"winner picked automatically: {decision.reason}")
    else:
        row.problem = f"waiting for a winner to be chosen: {decision.reason}"
    scoped.flush()
    return decision


def choose_winner(scoped: Session, campaign_id: str, key: str | None) -> CampaignPublic:
    """An operator's choice, once the test has gone: send the rest ``key``, or (None) nobody
    more — the people kept back are then left out, and the campaign is complete."""
    row = get_campaign_row(scoped, campaign_id)
    if row.status != "testing":
        raise ConflictError(f"the campaign is {row.status}; a winner is chosen while it is testing")
    if key is None:
        row.status, row.finished_at, row.decided_at = "completed", utcnow(), utcnow()
        row.problem = "the rest of the audience was not sent: no winner was chosen"
    else:
        if key not in {str(v["key"]) for v in row.variants}:
            raise ValidationFailedError(f"the campaign has no variant {key}", details={"path": "winner"})
        _send_rest(scoped, row, key, f"winner {key} chosen by an operator")
    scoped.flush()
    return campaign_to_public(row)
