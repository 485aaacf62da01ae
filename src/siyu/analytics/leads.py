"""B2B lead scoring: points for what a person did, fading with time, summed into a score and a
grade.

A scoring model is a list of point rules — an event (by name, or by type for page and screen
views) and the points each occurrence is worth, negative for what counts against a lead; or a
condition on traits (``when``, in the rule language: industry is 零售, company size at least 200)
and the points a person meeting it gets, without fading (it describes them now) — a half-life in
days (an occurrence ``half_life_days`` old is worth half its points, twice that a
quarter), and grade thresholds from the highest down; a score below every threshold gets the last
grade. A model that cannot be understood is refused, naming the rule at fault.

Written once as Ibis expressions: the same code runs on DuckDB, PostgreSQL and Spark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from siyu.core.clock import ensure_utc
from siyu.core.errors import ValidationFailedError
from siyu.rules.compiler import Moment, RuleInputs, compile_rule
from siyu.rules.nodes import All, AnyOf, Node, Not, Trait, parse_rule, rule_to_dict, walk

DAY_SECONDS = 86_400
MAX_RULES = 100
EVENT_TYPES = ("track", "page", "screen", "identify")


def _refuse(message: str, path: str) -> ValidationFailedError:
    return ValidationFailedError(message, details={"path": path})


@dataclass(frozen=True)
class PointRule:
    points: int
    event: str | None = None  # a track event's name
    type: str | None = None  # or every event of a type (page views …)
    when: Mapping[str, Any] | None = None  # or a condition on traits, in the rule language

    @property
    def condition(self) -> Node | None:
        return None if self.when is None else parse_rule(self.when)


@dataclass(frozen=True)
class Grade:
    name: str
    at_least: int


def _default_rules() -> tuple[PointRule, ...]:
    return (
        PointRule(30, event="Demo Requested"),
        PointRule(20, event="Form Submitted"),
        PointRule(10, event="Whitepaper Downloaded"),
        PointRule(1, type="page"),
    )


def _default_grades() -> tuple[Grade, ...]:
    return (Grade("A", 80), Grade("B", 50), Grade("C", 20), Grade("D", 0))


@dataclass(frozen=True)
class LeadModel:
    half_life_days: int = 30
    rules: tuple[PointRule, ...] = field(default_factory=_default_rules)
    grades: tuple[Grade, ...] = field(default_factory=_default_grades)

    def __post_init__(self) -> None:
        if not 1 <= self.half_life_days <= 3650:
            raise _refuse("half_life_days must be from 1 to 3650", "half_life_days")
        if not 1 <= len(self.rules) <= MAX_RULES:
            raise _refuse(f"a scoring model has 1 to {MAX_RULES} rules", "rules")
        for i, rule in enumerate(self.rules):
            path = f"rules[{i}]"
            if sum(x is not None for x in (rule.event, rule.type, rule.when)) != 1:
                raise _refuse(f"{path}: give one of an event name, an event type or a trait condition", path)
            if rule.when is not None:
                _check_condition(rule.when, f"{path}.when")
            if rule.event is not None and (not isinstance(rule.event, str) or not rule.event.strip()):
                raise _refuse(f"{path}: the event name must be text, not empty", path)
            if rule.type is not None and rule.type not in EVENT_TYPES:
                raise _refuse(f"{path}: type must be one of " + ", ".join(EVENT_TYPES), path)
            if not _whole(rule.points) or not -1000 <= rule.points <= 1000 or rule.points == 0:
                raise _refuse(f"{path}: points must be a whole number from -1000 to 1000, not 0", f"{path}.points")
        if not 1 <= len(self.grades) <= 10:
            raise _refuse("there are 1 to 10 grades", "grades")
        names = [g.name for g in self.grades]
        if any(not n.strip() or len(n) > 20 for n in names) or len(set(names)) != len(names):
            raise _refuse("grade names must be 1 to 20 characters and different", "grades")
        if any(not _whole(g.at_least) for g in self.grades) or any(
            a.at_least <= b.at_least for a, b in pairwise(self.grades)
        ):
            raise _refuse("grade thresholds must be whole numbers, falling from the first grade", "grades")

    def to_dict(self) -> dict[str, Any]:
        return {
            "half_life_days": self.half_life_days,
            "rules": [
                {
                    k: v
                    for k, v in (("event", r.event), ("type", r.type), ("when", r.when), ("points", r.points))
                    if v is not None
                }
                for r in self.rules
            ],
            "grades": [{"name": g.name, "at_least": g.at_least} for g in self.grades],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeadModel:
        """A model as stored or sent; anything not understood is refused, naming where."""
        extra = set(data) - {"half_life_days", "rules", "grades"}
        if extra:
            raise ValidationFailedError("unknown lead scoring settings: " + ", ".join(sorted(extra)))
        default = cls()
        half_life = data.get("half_life_days", default.half_life_days)
        if not _whole(half_life):
            raise _refuse("half_life_days must be a whole number", "half_life_days")
        rules = default.rules
        if "rules" in data:
            rules = tuple(_rule(r, f"rules[{i}]") for i, r in enumerate(_list(data["rules"], "rules")))
        grades = default.grades
        if "grades" in data:
            grades = tuple(_grade(g, f"grades[{i}]") for i, g in enumerate(_list(data["grades"], "grades")))
        return cls(half_life, rules, grades)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _list(value: object, path: str) -> Sequence[Any]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise _refuse(f"{path} must be a list", path)
    return value


def _rule(value: object, path: str) -> PointRule:
    if not isinstance(value, Mapping) or set(value) - {"event", "type", "when", "points"} or "points" not in value:
        raise _refuse(f"{path} must have points and an event, a type or a trait condition (when)", path)
    when = value.get("when")
    if when is not None:
        when = rule_to_dict(_check_condition(when, f"{path}.when"))
    return PointRule(value["points"], value.get("event"), value.get("type"), when)


def _check_condition(when: object, path: str) -> Node:
    """A trait condition: the rule language's trait comparisons under and / or / not."""
    try:
        node = parse_rule(when)
    except ValidationFailedError as exc:
        problem = exc.details["problems"][0]
        where = f"{path}.{problem['path']}".rstrip(".")
        raise _refuse(f"{where}: {problem['message']}", where) from None
    for at, part in walk(node):
        if not isinstance(part, Trait | All | AnyOf | Not):
            where = f"{path}.{at}".rstrip(".")
            raise _refuse(f"{where}: a lead scoring condition asks only about traits", where)
    return node


def trait_points(model: LeadModel, inputs: RuleInputs, moment: Moment) -> ir.Table | None:
    """profile_id, points: what each trait condition of the model gives each person meeting it
    (None when the model has no trait conditions)."""
    parts = [
        compile_rule(node, inputs, moment).select("profile_id", points=ibis.literal(rule.points, "float64"))
        for rule in model.rules
        if (node := rule.condition) is not None
    ]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)


def _grade(value: object, path: str) -> Grade:
    if not isinstance(value, Mapping) or set(value) != {"name", "at_least"} or not isinstance(value["name"], str):
        raise _refuse(f"{path} must have a name and at_least", path)
    return Grade(value["name"], value["at_least"])


def lead_scores(events: ir.Table, as_of: datetime, model: LeadModel, traits: ir.Table | None = None) -> ir.Table:
    """profile_id, score (rounded to two places), grade, for every person with a scored event or
    trait.

    ``events``: profile_id, type, event, timestamp — see :func:`siyu.analytics.inputs.person_events`;
    ``traits``: profile_id, points — see :func:`trait_points`.
    """
    now_s = int(ensure_utc(as_of).timestamp())
    by_event = ibis.memtable(
        pa.table(
            {
                "rule_event": pa.array([r.event for r in model.rules if r.event is not None], pa.string()),
                "points": pa.array([r.points for r in model.rules if r.event is not None], pa.int64()),
            }
        )
    )
    by_type = ibis.memtable(
        pa.table(
            {
                "rule_type": pa.array([r.type for r in model.rules if r.type is not None], pa.string()),
                "points": pa.array([r.points for r in model.rules if r.type is not None], pa.int64()),
            }
        )
    )
    seen = events.filter(events.timestamp.epoch_seconds() <= now_s)
    # Two equality joins (a join on "name or type" would compare every event with every rule).
    named = seen.join(by_event, seen.event == by_event.rule_event).select("profile_id", "timestamp", "points")
    typed = seen.join(by_type, seen.type == by_type.rule_type).select("profile_id", "timestamp", "points")
    matched = named.union(typed, distinct=False)
    age_days = (now_s - matched.timestamp.epoch_seconds()) / DAY_SECONDS
    worth = matched.points * (ibis.literal(0.5) ** (age_days / model.half_life_days))
    worths = matched.select("profile_id", worth=worth.cast("float64"))
    if traits is not None:
        worths = worths.union(traits.select("profile_id", worth=traits.points.cast("float64")), distinct=False)
    scored = worths.group_by("profile_id").aggregate(raw=worths.worth.sum())
    score = scored.raw.round(2)
    grade = ibis.cases(*[(score >= g.at_least, g.name) for g in model.grades[:-1]], else_=model.grades[-1].name)
    return scored.select("profile_id", score=score, grade=grade)
