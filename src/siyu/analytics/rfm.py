"""RFM: how recently, how often and how much each customer bought, scored 1–5, and the eight
classic groups (重要价值 … 一般挽留).

Who is scored: every person with at least one purchase up to the moment of the run. Recency is
whole days since their last purchase ever; frequency and monetary count the purchases within the
window (the last ``window_days``), so a lapsed big spender still has a recency and lands in a
挽留 group. Scores are either quintiles of the scored people (ties share a score, so the result is
the same on every engine) or the workspace's own business thresholds. Each dimension is then high
or low — by score (at least ``at_least``) or against the people's average — and the three
highs and lows name the group.

Written once as Ibis expressions: the same code runs on DuckDB, PostgreSQL and Spark.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from siyu.analytics.inputs import DAY_SECONDS, purchase_totals
from siyu.core.clock import ensure_utc
from siyu.core.errors import ValidationFailedError

DIMENSIONS = ("recency", "frequency", "monetary")
COLUMNS = {"recency": "recency_days", "frequency": "frequency", "monetary": "monetary_fen"}  # each one's value

# (recency high, frequency high, monetary high) → group, in the order reports list them.
GROUPS: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "important_value",
    (True, False, True): "important_develop",
    (False, True, True): "important_keep",
    (False, False, True): "important_retain",
    (True, True, False): "general_value",
    (True, False, False): "general_develop",
    (False, True, False): "general_keep",
    (False, False, False): "general_retain",
}
GROUP_NAMES = {
    "important_value": "重要价值",
    "important_develop": "重要发展",
    "important_keep": "重要保持",
    "important_retain": "重要挽留",
    "general_value": "一般价值",
    "general_develop": "一般发展",
    "general_keep": "一般保持",
    "general_retain": "一般挽留",
}


@dataclass(frozen=True)
class Split:
    """How one dimension is called high: a score of at least ``at_least``, or (``by="mean"``) a
    value at least the scored people's average (for recency: at most the average days)."""

    by: Literal["score", "mean"] = "score"
    at_least: int = 3


@dataclass(frozen=True)
class RfmConfig:
    window_days: int = 365
    scoring: Literal["quintile", "thresholds"] = "quintile"
    # Four ascending cut points per dimension, for ``scoring="thresholds"``: recency in days
    # (at most 30 days → 5 … more than the last → 1), frequency in purchases and monetary in fen
    # (at least the last → 5 … below the first → 1).
    thresholds: Mapping[str, tuple[int, int, int, int]] = field(
        default_factory=lambda: {
            "recency": (30, 90, 180, 365),
            "frequency": (2, 3, 5, 10),
            "monetary": (10_000, 50_000, 200_000, 1_000_000),
        }
    )
    split: Mapping[str, Split] = field(default_factory=lambda: {d: Split() for d in DIMENSIONS})

    def __post_init__(self) -> None:
        if not 1 <= self.window_days <= 3650:
            raise ValidationFailedError("window_days must be from 1 to 3650", details={"path": "window_days"})
        if self.scoring not in ("quintile", "thresholds"):
            raise ValidationFailedError("scoring must be quintile or thresholds", details={"path": "scoring"})
        for name in DIMENSIONS:
            cuts = self.thresholds.get(name)
            path = f"thresholds.{name}"
            if cuts is None:
                raise ValidationFailedError(f"{path} is missing", details={"path": path})
            if len(cuts) != 4 or any(not _whole(c) or c < 0 for c in cuts):
                raise ValidationFailedError(f"{path} must be four whole numbers, 0 or more", details={"path": path})
            if any(a >= b for a, b in pairwise(cuts)):
                raise ValidationFailedError(f"{path} must rise strictly: {list(cuts)}", details={"path": path})
            split = self.split.get(name)
            if split is None:
                raise ValidationFailedError(f"split.{name} is missing", details={"path": f"split.{name}"})
            if split.by not in ("score", "mean") or not _whole(split.at_least) or not 1 <= split.at_least <= 5:
                raise ValidationFailedError(
                    f"split.{name} must be by score (at_least 1 to 5) or by mean", details={"path": f"split.{name}"}
                )
        extra = (set(self.thresholds) | set(self.split)) - set(DIMENSIONS)
        if extra:
            raise ValidationFailedError("unknown RFM dimensions: " + ", ".join(sorted(extra)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_days": self.window_days,
            "scoring": self.scoring,
            "thresholds": {d: list(self.thresholds[d]) for d in DIMENSIONS},
            "split": {d: {"by": self.split[d].by, "at_least": self.split[d].at_least} for d in DIMENSIONS},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RfmConfig:
        """A configuration as stored or sent; anything not understood is refused, naming where."""
        extra = set(data) - {"window_days", "scoring", "thresholds", "split"}
        if extra:
            raise ValidationFailedError("unknown RFM settings: " + ", ".join(sorted(extra)))
        default = cls()
        window = data.get("window_days", default.window_days)
        if not _whole(window):
            raise ValidationFailedError("window_days must be a whole number", details={"path": "window_days"})
        thresholds = dict(default.thresholds)
        for name, cuts in _mapping(data.get("thresholds", {}), "thresholds").items():
            if not isinstance(cuts, list | tuple) or len(cuts) != 4:
                path = f"thresholds.{name}"
                raise ValidationFailedError(f"{path} must be a list of four numbers", details={"path": path})
            thresholds[name] = tuple(cuts)
        split = dict(default.split)
        for name, rule in _mapping(data.get("split", {}), "split").items():
            rule = _mapping(rule, f"split.{name}")
            unknown = set(rule) - {"by", "at_least"}
            if unknown:
                raise ValidationFailedError(
                    f"split.{name}: unknown settings " + ", ".join(sorted(unknown)), details={"path": f"split.{name}"}
                )
            split[name] = Split(rule.get("by", "score"), rule.get("at_least", 3))
        return cls(window, data.get("scoring", default.scoring), thresholds, split)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationFailedError(f"{path} must be an object", details={"path": path})
    return value


def rfm(purchases: ir.Table, as_of: datetime, config: RfmConfig) -> ir.Table:
    """One row per person with a purchase up to ``as_of``: profile_id, last_purchase_at,
    recency_days, frequency, monetary_fen, r_score, f_score, m_score, rfm_group.

    ``purchases``: profile_id, at (timestamp), amount_fen — see :func:`siyu.analytics.inputs.purchases`.
    """
    return scored_rfm(purchase_totals(purchases, as_of, [config.window_days]), as_of, config)


def scored_rfm(totals: ir.Table, as_of: datetime, config: RfmConfig) -> ir.Table:
    """As :func:`rfm`, from the people's purchase totals (:func:`siyu.analytics.inputs.purchase_totals`
    with the configuration's window among its windows)."""
    now_s = int(ensure_utc(as_of).timestamp())
    window = config.window_days
    days = (now_s - totals.last_at.epoch_seconds()) // DAY_SECONDS
    people = totals.select(
        "profile_id",
        last_purchase_at=totals.last_at,
        recency_days=days.cast("int64"),
        frequency=totals[f"bought_{window}"],
        monetary_fen=totals[f"spent_{window}"],
    )
    for name, column in COLUMNS.items():
        score = f"{name[0]}_score"
        if config.scoring == "quintile":
            people = _with_quintile(people, column, score, descending=name == "recency")
        else:
            given = _threshold_score(people[column], config.thresholds[name], name == "recency")
            people = people.mutate(**{score: given})
    high = {}
    for name in DIMENSIONS:
        rule = config.split[name]
        value = people[COLUMNS[name]]
        if rule.by == "score":
            high[name] = people[f"{name[0]}_score"] >= rule.at_least
        elif name == "recency":
            high[name] = value <= value.mean().over(ibis.window())
        else:
            high[name] = value >= value.mean().over(ibis.window())
    group = ibis.cases(
        *[
            ((high["recency"] == r) & (high["frequency"] == f) & (high["monetary"] == m), code)
            for (r, f, m), code in GROUPS.items()
        ]
    )
    return people.mutate(rfm_group=group).select(
        "profile_id",
        "last_purchase_at",
        "recency_days",
        "frequency",
        "monetary_fen",
        "r_score",
        "f_score",
        "m_score",
        "rfm_group",
    )


def _with_quintile(people: ir.Table, column: str, score: str, descending: bool) -> ir.Table:
    """``people`` with ``score``: 1 + 5 × (how many people have a worse value) ÷ (how many there are),
    so ties share a score. Counted over the distinct values, which are far fewer than the people,
    rather than by ranking everyone."""
    counts = people.group_by(value=people[column]).aggregate(k=people.count().cast("int64"))
    order = ibis.desc(counts.value) if descending else counts.value
    upto = counts.k.sum().over(ibis.cumulative_window(order_by=order))
    total = counts.k.sum().over(ibis.window())
    scores = counts.select("value", given=(1 + (upto - counts.k) * 5 // total).cast("int64"))
    joined = people.join(scores, people[column] == scores.value)
    return joined.select(*people.columns, **{score: joined.given})


def _threshold_score(value: ir.IntegerValue, cuts: tuple[int, ...], lower_is_better: bool) -> ir.IntegerValue:
    passed = [(value <= c) if lower_is_better else (value >= c) for c in cuts]
    total: ir.IntegerValue = ibis.literal(1, "int64")
    for p in passed:
        total = total + p.ifelse(1, 0)
    return total.cast("int64")
