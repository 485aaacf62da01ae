"""What the computations start from, derived from the snapshots as Ibis expressions.

A purchase is an order that was paid and neither cancelled nor refunded, counted for the person
its buyer identifier belongs to now (so a merge moves a person's purchases with them). Orders of
buyers who are no one — shared or weak identifiers only — are not anyone's purchases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from siyu.analytics.snapshots import CHANNELS, KINDS, PLATFORMS, PURPOSES, STATUSES
from siyu.core.clock import ensure_utc
from siyu.rules.compiler import Tally

DAY_SECONDS = 86_400


def _owners(identities: ir.Table) -> ir.Table:
    """profile_id, code: the identifiers that belong to someone."""
    return identities.filter(identities.profile_id.notnull()).select("profile_id", "code")


def purchases(orders: ir.Table, identities: ir.Table, *, store: bool = True) -> ir.Table:
    """profile_id, order_code, at (when paid), amount_fen, platform, store. The buyer is found by
    the identifier's code, and the order is known by its own (see ``snapshots``). ``store``:
    whether to keep the store, which only rules naming one read (a column of text costs a run
    at 100M purchases a second to keep in memory)."""
    return named_platforms(kept_purchases(orders, identities, store=store))


def kept_purchases(orders: ir.Table, identities: ir.Table, *, store: bool = True) -> ir.Table:
    """The purchases as a run keeps them in memory: each platform as its code (``platform_code``,
    its place in ``PLATFORMS``), a byte rather than text; ``named_platforms`` names them."""
    paid = orders.filter(orders.paid_at.notnull(), orders.cancelled_at.isnull(), orders.refunded_at.isnull())
    kept = ("platform_code", "store") if store else ("platform_code",)
    paid = paid.select("buyer_code", "paid_at", "paid_fen", *kept, order_code=paid.code)
    owners = _owners(identities)
    joined = paid.join(owners, paid.buyer_code == owners.code)
    return joined.select(
        profile_id=joined.profile_id,
        order_code=joined.order_code,
        at=joined.paid_at,
        amount_fen=joined.paid_fen,
        **{name: joined[name] for name in kept},
    )


def named_platforms(kept: ir.Table) -> ir.Table:
    """``kept`` (``kept_purchases``) with each platform's name in ``platform``: worked out only by
    the queries that read it."""
    platform = _named(kept.platform_code, PLATFORMS)
    rest = [c for c in kept.columns if c not in ("profile_id", "order_code", "at", "amount_fen", "platform_code")]
    return kept.select("profile_id", "order_code", "at", "amount_fen", platform=platform, **{c: kept[c] for c in rest})


def purchase_totals(
    purchases: ir.Table,
    as_of: datetime,
    windows: Iterable[int],
    tallies: Mapping[str, Tally] | None = None,
    first: bool = True,
) -> ir.Table:
    """One row per person with a purchase up to ``as_of``: profile_id, purchases_total, first_at
    (unless not ``first``), last_at, and for each window of ``windows`` (days) ``bought_<days>`` and ``spent_<days>``
    (fen): the purchases within that many days before ``as_of`` and their amount. What RFM and
    the lifecycle stages both start from, so a run groups its purchases by person once.
    ``tallies``: rules' order aggregates counting only purchases up to ``as_of``
    (``rules.compiler.recent_purchase_tallies``), each totalled in the same grouping, in a
    column of the name it is given under (the table is then the rules' ``tallies`` input)."""
    now = ensure_utc(as_of).replace(tzinfo=None)  # as the inputs keep time
    seen = purchases.filter(purchases.at <= now)
    within: dict[str, ir.Value] = {}
    for days in sorted(set(windows)):
        inside = seen.at > now - timedelta(days=days)
        within[f"bought_{days}"] = seen.count(where=inside).cast("int64")
        within[f"spent_{days}"] = seen.amount_fen.sum(where=inside).coalesce(0).cast("int64")
    for name, tally in (tallies or {}).items():
        within[name] = tally.total(seen, tally.where(seen))
    firsts = {"first_at": seen.at.min()} if first else {}
    return seen.group_by("profile_id").aggregate(
        purchases_total=seen.count().cast("int64"), **firsts, last_at=seen.at.max(), **within
    )


def people(identities: ir.Table) -> ir.Table:
    """profile_id of everyone: the people some identifier belongs to (a person merged into another
    has none left)."""
    return identities.filter(identities.profile_id.notnull()).select("profile_id").distinct()


def speaking_identities(identities: ir.Table) -> ir.Table:
    """profile_id, identity_id: the one identifier that events siyu derives about a person are
    recorded under (any of theirs would do; the smallest id, so it is the same every run)."""
    own = identities.filter(identities.profile_id.notnull(), ~identities.weak, ~identities.shared)
    return own.group_by("profile_id").aggregate(identity_id=own.id.min())


def activity(theirs: ir.Table) -> ir.Table:
    """profile_id, last_seen_at: when each person's latest event happened (any kind of event).
    ``theirs``: the events on the people they are about (see :func:`person_events`)."""
    return theirs.group_by("profile_id").aggregate(last_seen_at=theirs.timestamp.max())


def person_events(events: ir.Table, identities: ir.Table) -> ir.Table:
    """profile_id, type, event, timestamp, properties: every event of the event log, on the person
    it is about (found by its identifier's code, see ``snapshots``)."""
    owners = _owners(identities)
    joined = events.join(owners, events.identity_code == owners.code)
    return joined.select("profile_id", "type", "event", "timestamp", "properties")


def community_groups(events: ir.Table, identities: ir.Table) -> ir.Table:
    """profile_id, group_id: the community groups group calls put each person in."""
    calls = events.filter(events.type == "group", events.group_id.notnull())
    owners = _owners(identities)
    joined = calls.join(owners, calls.identity_code == owners.code)
    return joined.select("profile_id", "group_id").distinct()


# The kinds of identifier a channel sends to; ads take any the consent was given for.
CHANNEL_KINDS: dict[str, tuple[str, ...]] = {
    "sms": ("phone",),
    "email": ("email",),
    "wechat_oa": ("openid",),
    "miniprogram": ("openid",),
    "wecom": ("wecom_external_userid",),
    "app_push": ("user_id", "anonymous_id"),
}


def reachability(identities: ir.Table, consents: ir.Table) -> ir.Table:
    """profile_id, channel, purpose: who has an address on the channel whose latest consent for the
    purpose is a grant. No record is no consent; weak and shared identifiers reach no one."""
    return named_reach(kept_reachability(identities, consents))


def kept_reachability(identities: ir.Table, consents: ir.Table) -> ir.Table:
    """As ``reachability``, as a run keeps it in memory: the channel and purpose as their codes
    (``channel_code``, ``purpose_code``: their places in ``CHANNELS`` and ``PURPOSES``), so the
    ledger is ranked and the rows made distinct on integers; ``named_reach`` names them."""
    latest = consents.mutate(
        n=ibis.row_number().over(
            group_by=[consents.identity_code, consents.channel_code, consents.purpose_code],
            order_by=[consents.at.desc(), consents.id.desc()],
        )
    )
    granted = latest.filter(latest.n == 0, latest.status_code == STATUSES.index("granted"))
    own = identities.filter(identities.profile_id.notnull(), ~identities.weak, ~identities.shared)
    joined = granted.join(own, granted.identity_code == own.code)
    fits = joined.channel_code == CHANNELS.index("ads")
    for channel, kinds in CHANNEL_KINDS.items():
        codes = [KINDS.index(k) for k in kinds]
        fits |= (joined.channel_code == CHANNELS.index(channel)) & joined.kind_code.isin(codes)
    return joined.filter(fits).select("profile_id", "channel_code", "purpose_code").distinct()


def named_reach(kept: ir.Table) -> ir.Table:
    """``kept`` (``kept_reachability``) with each channel's and purpose's name: worked out only by
    the queries that read them."""
    return kept.select(
        "profile_id", channel=_named(kept.channel_code, CHANNELS), purpose=_named(kept.purpose_code, PURPOSES)
    )


def _named(code: ir.IntegerValue, names: tuple[str, ...]) -> ir.StringValue:
    """The name at each code's place in ``names``."""
    named: ir.StringValue = ibis.cases(*((code == i, name) for i, name in enumerate(names)))
    return named


def purchased_items(purchases: ir.Table, items: ir.Table, products: ir.Table) -> ir.Table:
    """profile_id, at, sku, category, brand: each item of each purchase (category and brand
    empty for SKUs the product list does not have)."""
    bought = purchases.select("profile_id", "order_code", "at")
    joined = items.join(bought, items.order_code == bought.order_code)
    withproduct = joined.left_join(products, joined.sku == products.sku)
    return withproduct.select(
        profile_id=withproduct.profile_id,
        at=withproduct.at,
        sku=withproduct.sku,
        category=withproduct.category,
        brand=withproduct.brand,
    )
