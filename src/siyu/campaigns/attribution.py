"""Which orders a campaign earned. A touch is a campaign message that went out to a person or
their first click on its link; an order the person paid (and neither refunded nor cancelled)
within the window after a touch converts, and is credited to one touch: the last before it
(last touch) or the first (first touch) — across every campaign the person got, so two
campaigns never both claim an order. Apart from credit, the people the campaign reached are
compared with its holdout: who ordered at all within the window after launch, in each group."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from siyu.channels import facade as channels
from siyu.commerce import facade as commerce
from siyu.identity import facade as identity
from siyu.identity.contracts import IdentifierKind
from siyu.tracking import facade as tracking


@dataclass
class Credit:
    people: set[str] = field(default_factory=set)
    orders: int = 0
    revenue_fen: int = 0

    def add(self, person: str, fen: int) -> None:
        self.people.add(person)
        self.orders += 1
        self.revenue_fen += fen


@dataclass(frozen=True)
class Attribution:
    by_variant: dict[str, Credit]
    reached_buyers: int  # people sent the campaign who paid an order within the window after launch
    held_buyers: int  # the same among the holdout
    # By the channel of the credited touch (a fallback's channel for the people it reached).
    by_channel: dict[str, Credit] = field(default_factory=dict)


def attribute(
    scoped: Session,
    *,
    source: str,
    launched_at: datetime,
    variant_of: Mapping[str, str],  # person → variant, for the people sent the campaign
    held_out: Sequence[str],
    window: timedelta,
    model: str,
) -> Attribution:
    reached = list(variant_of)
    everyone = reached + list(held_out)
    by_variant: dict[str, Credit] = defaultdict(Credit)
    by_channel: dict[str, Credit] = defaultdict(Credit)
    if not everyone:
        return Attribution({}, 0, 0)
    touches: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    since = launched_at - window
    for person, src, at, channel in channels.went_out(scoped, reached, since):
        touches[person].append((at, src, channel))
    for person, src, at, channel in tracking.clicks_of(scoped, reached, since):
        touches[person].append((at, src, channel))
    kinds = [k.value for k in IdentifierKind]
    owner = {i: p for p, i, *_ in identity.identities_of_profiles(scoped, everyone, kinds)}
    bought_in_window: set[str] = set()
    for buyer, _order, paid_at, fen in commerce.paid_orders(scoped, list(owner), since):
        person = owner[buyer]
        if launched_at <= paid_at <= launched_at + window:
            bought_in_window.add(person)
        candidates = [t for t in touches.get(person, ()) if t[0] <= paid_at <= t[0] + window]
        if not candidates:
            continue
        _, credited, channel = max(candidates) if model == "last_touch" else min(candidates)
        if credited == source and person in variant_of:
            by_variant[variant_of[person]].add(person, fen)
            by_channel[channel].add(person, fen)
    held = set(held_out)
    return Attribution(
        dict(by_variant),
        len(bought_in_window - held),
        len(bought_in_window & held),
        dict(by_channel),
    )
