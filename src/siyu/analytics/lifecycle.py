"""Lifecycle: every person in one stage of the workspace's stage model (潜客, 新客, 活跃/复购, 忠诚,
沉睡, 流失 by default), decided by rules over their purchases and their engagement (days since
their last event of any kind).

A stage model is an ordered list of stages. Each stage but the last has conditions on a person's
metrics, all of which must hold; a person is in the first stage whose conditions hold, and the
last stage — which has none, and says so — takes everyone else. A comparison with a metric the
person does not have (days since the last purchase of someone who never bought) does not hold.
A model that cannot be understood is refused, naming the stage and condition at fault; there is
no reading of a broken model that puts everyone in a stage.

Written once as Ibis expressions: the same code runs on DuckDB, PostgreSQL and Spark.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from siyu.analytics.inputs import DAY_SECONDS, purchase_totals
from siyu.core.clock import ensure_utc
from siyu.core.errors import ValidationFailedError

METRICS = {
    "purchases_total": "purchases ever",
    "purchases_in_window": "purchases within the window",
    "spend_in_window_fen": "spend within the window, in fen",
    "days_since_last_purchase": "whole days since the last purchase",
    "days_since_first_purchase": "whole days since the first purchase",
    "days_since_last_seen": "whole days since their last event of any kind (engagement)",
}
OPERATORS = (">", ">=", "<", "<=", "=", "!=")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_STAGES = 20


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    value: int


@dataclass(frozen=True)
class Stage:
    code: str
    name: str
    when: tuple[Condition, ...] = ()


def _refuse(message: str, path: str) -> ValidationFailedError:
    return ValidationFailedError(message, details={"path": path})


def _default_stages() -> tuple[Stage, ...]:
    return (
        Stage("prospect", "潜客", (Condition("purchases_total", "=", 0),)),
        Stage("lost", "流失", (Condition("days_since_last_purchase", ">", 365),)),
        Stage("dormant", "沉睡", (Condition("days_since_last_purchase", ">", 180),)),
        Stage("loyal", "忠诚", (Condition("purchases_in_window", ">=", 4),)),
        Stage("active", "活跃/复购", (Condition("purchases_total", ">=", 2),)),
        Stage("new", "新客"),
    )


@dataclass(frozen=True)
class StageModel:
    window_days: int = 365
    stages: tuple[Stage, ...] = field(default_factory=_default_stages)

    @property
    def reads_first_purchase(self) -> bool:
        """Whether a stage's conditions ask how long ago the first purchase was: only then need the
        purchase totals find it (``purchase_totals(first=…)``), a grouping's worth of work."""
        return any(c.metric == "days_since_first_purchase" for s in self.stages for c in s.when)

    def __post_init__(self) -> None:
        if not 1 <= self.window_days <= 3650:
            raise _refuse("window_days must be from 1 to 3650", "window_days")
        if not 2 <= len(self.stages) <= MAX_STAGES:
            raise _refuse(f"a stage model has 2 to {MAX_STAGES} stages", "stages")
        seen: set[str] = set()
        for i, stage in enumerate(self.stages):
            path = f"stages[{i}]"
            if not _CODE.match(stage.code):
                message = f"{path}: code {stage.code!r} must be lowercase letters, digits and _ (at most 32)"
                raise _refuse(message, f"{path}.code")
            if stage.code in seen:
                raise _refuse(f"{path}: code {stage.code!r} is used twice", f"{path}.code")
            seen.add(stage.code)
            if not stage.name.strip() or len(stage.name) > 40:
                raise _refuse(f"{path}: name must be 1 to 40 characters", f"{path}.name")
            last = i == len(self.stages) - 1
            if last and stage.when:
                raise _refuse(f"{path}: the last stage takes everyone else and has no conditions", f"{path}.when")
            if not last and not stage.when:
                message = f"{path}: only the last stage may have no conditions (it would take everyone after it)"
                raise _refuse(message, f"{path}.when")
            for j, c in enumerate(stage.when):
                where = f"{path}.when[{j}]"
                if c.metric not in METRICS:
                    raise _refuse(f"{where}: unknown metric {c.metric!r}; one of " + ", ".join(METRICS), where)
                if c.op not in OPERATORS:
                    raise _refuse(f"{where}: unknown operator {c.op!r}; one of " + " ".join(OPERATORS), where)
                if not isinstance(c.value, int) or isinstance(c.value, bool) or c.value < 0:
                    raise _refuse(f"{where}: value must be a whole number, 0 or more", where)

    def name_of(self, code: str) -> str:
        return next((s.name for s in self.stages if s.code == code), code)

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_days": self.window_days,
            "stages": [
                {
                    "code": s.code,
                    "name": s.name,
                    "when": [{"metric": c.metric, "op": c.op, "value": c.value} for c in s.when],
                }
                for s in self.stages
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageModel:
        """A model as stored or sent; anything not understood is refused, naming where."""
        extra = set(data) - {"window_days", "stages"}
        if extra:
            raise ValidationFailedError("unknown lifecycle settings: " + ", ".join(sorted(extra)))
        window = data.get("window_days", 365)
        if not isinstance(window, int) or isinstance(window, bool):
            raise _refuse("window_days must be a whole number", "window_days")
        raw = data.get("stages")
        if raw is None:
            return cls(window)
        if not isinstance(raw, Sequence) or isinstance(raw, str):
            raise _refuse("stages must be a list", "stages")
        stages = []
        for i, s in enumerate(raw):
            path = f"stages[{i}]"
            if not isinstance(s, Mapping) or set(s) - {"code", "name", "when"}:
                raise _refuse(f"{path} must have code, name and when", path)
            when = s.get("when", [])
            if not isinstance(when, Sequence) or isinstance(when, str):
                raise _refuse(f"{path}.when must be a list", f"{path}.when")
            conditions = []
            for j, c in enumerate(when):
                if not isinstance(c, Mapping) or set(c) != {"metric", "op", "value"}:
                    where = f"{path}.when[{j}]"
                    raise _refuse(f"{where} must have metric, op and value", where)
                conditions.append(Condition(str(c["metric"]), str(c["op"]), c["value"]))
            stages.append(Stage(str(s.get("code", "")), str(s.get("name", "")), tuple(conditions)))
        return cls(window, tuple(stages))


DEFAULT_MODEL = StageModel()


def person_metrics(
    people: ir.Table, purchases: ir.Table, as_of: datetime, window_days: int, activity: ir.Table | None = None
) -> ir.Table:
    """profile_id and each metric of METRICS, for every person of ``people`` (a profile_id column).
    ``activity``: profile_id, last_seen_at (their latest event); without it no one has been seen."""
    return metrics_of(people, purchase_totals(purchases, as_of, [window_days]), as_of, window_days, activity)


def metrics_of(
    people: ir.Table, totals: ir.Table, as_of: datetime, window_days: int, activity: ir.Table | None = None
) -> ir.Table:
    """As :func:`person_metrics`, from the purchase totals of the people who bought
    (:func:`siyu.analytics.inputs.purchase_totals`, with ``window_days`` among its windows)."""
    now_s = int(ensure_utc(as_of).timestamp())
    joined = people.left_join(totals, people.profile_id == totals.profile_id).drop("profile_id_right")
    if activity is not None:
        seen_at = activity.filter(activity.last_seen_at.epoch_seconds() <= now_s)
        seen_at = seen_at.select("profile_id", seen_s=seen_at.last_seen_at.epoch_seconds())
        joined = joined.left_join(seen_at, "profile_id").drop("profile_id_right")
        last_seen = ((now_s - joined.seen_s) // DAY_SECONDS).cast("int64")
    else:
        last_seen = ibis.null("int64")
    # Totals without the first purchase (``first=False``) are for models that do not ask.
    first_at = joined.first_at if "first_at" in joined.columns else ibis.null("timestamp")
    return joined.select(
        profile_id=joined.profile_id,
        purchases_total=joined.purchases_total.fill_null(0).cast("int64"),
        purchases_in_window=joined[f"bought_{window_days}"].fill_null(0).cast("int64"),
        spend_in_window_fen=joined[f"spent_{window_days}"].fill_null(0).cast("int64"),
        days_since_last_purchase=((now_s - joined.last_at.epoch_seconds()) // DAY_SECONDS).cast("int64"),
        days_since_first_purchase=((now_s - first_at.epoch_seconds()) // DAY_SECONDS).cast("int64"),
        days_since_last_seen=last_seen,
    )


def lifecycle(
    people: ir.Table, purchases: ir.Table, as_of: datetime, model: StageModel, activity: ir.Table | None = None
) -> ir.Table:
    """profile_id and stage (a stage code) for every person of ``people``; ``activity`` as for
    :func:`person_metrics`."""
    return staged(people, purchase_totals(purchases, as_of, [model.window_days]), as_of, model, activity)


def staged(
    people: ir.Table, totals: ir.Table, as_of: datetime, model: StageModel, activity: ir.Table | None = None
) -> ir.Table:
    """As :func:`lifecycle`, from the purchase totals (as for :func:`metrics_of`)."""
    metrics = metrics_of(people, totals, as_of, model.window_days, activity)
    cases = []
    for stage in model.stages[:-1]:
        holds = [_compare(metrics[c.metric], c.op, c.value) for c in stage.when]
        cond = holds[0]
        for h in holds[1:]:
            cond = cond & h
        cases.append((cond.fill_null(False), stage.code))
    stage = ibis.cases(*cases, else_=model.stages[-1].code)
    return metrics.select("profile_id", stage=stage)


def _compare(value: ir.IntegerValue, op: str, bound: int) -> ir.BooleanValue:
    match op:
        case ">":
            return value > bound
        case ">=":
            return value >= bound
        case "<":
            return value < bound
        case "<=":
            return value <= bound
        case "=":
            return value == bound
        case "!=":
            return value != bound
    raise ValidationFailedError(f"unknown operator {op!r}")
