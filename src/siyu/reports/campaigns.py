"""A campaign's report: the funnel of each variant (in the audience → held out → sent →
delivered → clicked → landing-page visitors and forms → converted), delivery, click-through and
conversion rates, revenue, cost and ROI; the uplift over the holdout; and whether the variants
differ in click-through and in conversion (z-tests, chi-square, probability to be best). Read
through the owning domains' facades."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy.orm import Session

from siyu.campaigns import facade as campaigns
from siyu.campaigns.abtest import Arm, Comparison, compare
from siyu.campaigns.attribution import Attribution, Credit, attribute
from siyu.channels import facade as channels
from siyu.landing import facade as landing
from siyu.tracking import facade as tracking

WENT_OUT = channels.WENT_OUT


@dataclass(frozen=True)
class Funnel:
    key: str
    audience: int
    held_out: int
    skipped: int  # by the send policy, the holdout apart
    sent: int
    delivered: int
    clicked: int  # people, each once; bots never
    converted: int = 0  # people with an order credited to the campaign
    orders: int = 0
    revenue_fen: int = 0
    cost_fen: int = 0
    page_visitors: int = 0  # people who reached a landing page through its links
    page_forms: int = 0  # forms they sent there

    @property
    def delivery_rate(self) -> float:
        return self.delivered / self.sent if self.sent else 0.0

    @property
    def click_rate(self) -> float:
        return self.clicked / self.sent if self.sent else 0.0

    @property
    def conversion_rate(self) -> float:
        return self.converted / self.sent if self.sent else 0.0

    @property
    def roi(self) -> float | None:
        """(revenue − cost) / cost; None without a cost."""
        return (self.revenue_fen - self.cost_fen) / self.cost_fen if self.cost_fen else None


@dataclass(frozen=True)
class Uplift:
    """Who ordered within the window after launch: the people sent the campaign against its
    holdout."""

    reached: int
    reached_buyers: int
    held_out: int
    held_buyers: int

    @property
    def reached_rate(self) -> float:
        return self.reached_buyers / self.reached if self.reached else 0.0

    @property
    def held_rate(self) -> float:
        return self.held_buyers / self.held_out if self.held_out else 0.0

    @property
    def uplift(self) -> float | None:
        return self.reached_rate - self.held_rate if self.held_out and self.reached else None


@dataclass(frozen=True)
class ChannelRevenue:
    """What the campaign earned through one channel: the channel of the credited touch (a
    fallback's for the people only it reached)."""

    channel: str
    converted: int
    orders: int
    revenue_fen: int


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: str
    variants: list[Funnel]
    total: Funnel
    clicks: Comparison  # click-through of the variants (people who were sent it)
    conversions: Comparison
    uplift: Uplift
    window_hours: int
    attribution: str
    channels: list[ChannelRevenue]


def _funnel(
    key: str,
    people: list[str],
    status: dict[str, tuple[str, str]],
    clicked: set[str],
    credit: Credit | None,
    cost_per_message: int,
) -> Funnel:
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
    c = credit or Credit()
    return Funnel(
        key, len(people), held, skipped, sent, delivered, clicks, len(c.people), c.orders, c.revenue_fen,
        sent * cost_per_message,
    )  # fmt: skip


def _with_pages(f: Funnel, pages: landing.CampaignVisits | None) -> Funnel:
    return replace(f, page_visitors=pages.visitors, page_forms=pages.submissions) if pages else f


def campaign_report(scoped: Session, campaign_id: str) -> CampaignReport:
    campaign = campaigns.get_campaign(scoped, campaign_id)
    settings = campaigns.get_settings(scoped)
    audience = campaigns.audience_by_variant(scoped, campaign_id)
    status = channels.statuses_by_profile(scoped, campaign.source)
    clicked = tracking.clickers(scoped, campaign.source)
    channel = (
        channels.get_template(scoped, str(campaign.variants[0]["template_id"])).channel if campaign.variants else ""
    )
    cost = int(settings.costs.get(channel, 0))
    variant_of = {p: key for key, people in audience.items() for p in people if status.get(p, ("", ""))[0] in WENT_OUT}
    held_out = [p for people in audience.values() for p in people if status.get(p) == ("skipped", "holdout")]
    window = timedelta(hours=settings.window_hours)
    if campaign.launched_at is not None:
        credit = attribute(
            scoped,
            source=campaign.source,
            launched_at=campaign.launched_at,
            variant_of=variant_of,
            held_out=held_out,
            window=window,
            model=settings.attribution,
        )
    else:
        credit = Attribution({}, 0, 0)
    pages = landing.campaign_visits(scoped, campaign_id)
    funnels = [
        _with_pages(
            _funnel(
                str(v["key"]), audience.get(str(v["key"]), []), status, clicked, credit.by_variant.get(str(v["key"])),
                cost,
            ),
            pages.get(str(v["key"])),
        )
        for v in campaign.variants
    ]  # fmt: skip
    everyone = [p for people in audience.values() for p in people]
    total_credit = Credit(
        {p for c in credit.by_variant.values() for p in c.people},
        sum(c.orders for c in credit.by_variant.values()),
        sum(c.revenue_fen for c in credit.by_variant.values()),
    )
    return CampaignReport(
        campaign_id,
        funnels,
        _with_pages(
            _funnel("total", everyone, status, clicked, total_credit, cost),
            landing.CampaignVisits(sum(p.visitors for p in pages.values()), sum(p.submissions for p in pages.values())),
        ),
        compare([Arm(f.key, f.sent, f.clicked) for f in funnels]),
        compare([Arm(f.key, f.sent, f.converted) for f in funnels]),
        Uplift(len(variant_of), credit.reached_buyers, len(held_out), credit.held_buyers),
        settings.window_hours,
        settings.attribution,
        [
            ChannelRevenue(channel, len(c.people), c.orders, c.revenue_fen)
            for channel, c in sorted(credit.by_channel.items(), key=lambda kv: -kv[1].revenue_fen)
        ],
    )
