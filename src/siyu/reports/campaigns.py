"""A campaign's report: the funnel of each variant (in the audience → held out → sent →
delivered → clicked), delivery rate and click-through rate, and whether the variants differ in
click-through (z-tests, chi-square, probability to be best). Read through the owning domains'
facades."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from siyu.campaigns import facade as campaigns
from siyu.channels import facade as channels
from siyu.reports.abtest import Arm, Comparison, compare
from siyu.tracking import facade as tracking

WENT_OUT = ("sent", "delivered", "undelivered")


@dataclass(frozen=True)
class Funnel:
    key: str
    audience: int
    held_out: int
    skipped: int  # by the send policy, the holdout apart
    sent: int
    delivered: int
    clicked: int  # people, each once; bots never

    @property
    def delivery_rate(self) -> float:
        return self.delivered / self.sent if self.sent else 0.0

    @property
    def click_rate(self) -> float:
        return self.clicked / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: str
    variants: list[Funnel]
    total: Funnel
    clicks: Comparison  # click-through of the variants (people who were sent it)


def _funnel(key: str, people: list[str], status: dict[str, tuple[str, str]], clicked: set[str]) -> Funnel:
    held = skipped = sent = delivered = clicks = 0
    for p in people:
        s, reason = status.get(p, ("", ""))
        if s == "skipped":
            if reason == "holdout":
                held += 1
            else:
                skipped += 1
        elif s in WENT_OUT:
            sent += 1
            delivered += s == "delivered"
            clicks += p in clicked
    return Funnel(key, len(people), held, skipped, sent, delivered, clicks)


def campaign_report(scoped: Session, campaign_id: str) -> CampaignReport:
    campaign = campaigns.get_campaign(scoped, campaign_id)
    audience = campaigns.audience_by_variant(scoped, campaign_id)
    status = channels.statuses_by_profile(scoped, campaign.source)
    clicked = tracking.clickers(scoped, campaign.source)
    funnels = [_funnel(str(v["key"]), audience.get(str(v["key"]), []), status, clicked) for v in campaign.variants]
    everyone = [p for people in audience.values() for p in people]
    return CampaignReport(
        campaign_id,
        funnels,
        _funnel("total", everyone, status, clicked),
        compare([Arm(f.key, f.sent, f.clicked) for f in funnels]),
    )
