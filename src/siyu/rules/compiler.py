"""Rules compiled to Ibis: the people a rule selects, as a table of ``profile_id``.

Pure: it builds expressions over the tables it is given and reads nothing itself, so the same
rule runs on DuckDB, PostgreSQL or Spark, over everyone (batch) or over one person's rows
(``restricted``) with the same meaning. Each leaf is a set of people; ``and`` intersects its
conditions (and subtracts those under ``not``), ``or`` unites them, ``not`` is everyone less its
condition. Negative comparisons (``ne``, ``not_in``, ``excludes``) ask for people who have the
trait; wrap a positive one in ``not`` to include people without it. Counting conditions that hold
for zero (``event`` count ≤ 2) include the people who never did it.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, assert_never
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np

from siyu.core.clock import ensure_utc
from siyu.rules.nodes import (
    All,
    AnyOf,
    Bought,
    Bucket,
    CommunityGroup,
    HasTag,
    InSegment,
    Leaf,
    Lifecycle,
    Node,
    Not,
    Orders,
    Performed,
    PropertyFilter,
    Reachable,
    RfmGroup,
    RfmScore,
    Trait,
    Window,
    rule_to_dict,
    walk,
)

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


@dataclass(frozen=True)
class RuleInputs:
    """The tables rules read, each keyed by ``profile_id``. A rule naming a table given as None
    is a programming error (the caller decides which inputs its rules may use).

    - people: profile_id — everyone, each once: whom ``not`` is taken from
    - traits: profile_id, key, kind, text, number, time, flag — one row per value (a list trait:
      one per element)
    - rfm: profile_id, r_score, f_score, m_score, rfm_group — one row per person
    - lifecycle: profile_id, stage — one row per person
    - tags: profile_id, tag_id, value
    - purchases: profile_id, at, amount_fen, platform, store (store: if some rule names one)
    - events: profile_id, event, timestamp (and properties, a JSON object as text, for rules that
      test them)
    - items: profile_id, at, sku, category, brand — what each purchase held
    - reach: profile_id, channel, purpose — who can be sent to where (``reachability``), each
      such row once
    - groups: profile_id, group_id — community group members, each membership once
    - segments: profile_id, segment_id — segment members
    - buckets: profile_id, seed, bucket — each person's bucket for each seed the rules draw on
      (``rules.buckets``), once
    - tallies: profile_id and a column (``tally_column``) for each of some order aggregates
      worked out ahead at the same moment (``recent_purchase_tallies``) — one row per person
      with a purchase up to then; the leaves whose column it has read it rather than the
      purchases
    - keyed: some of the inputs above also as their rows are kept, by another key than the
      person (``Keyed``): the event log by identifier, say. A caller counting in arrays
      (``rules.bitmaps``) then finds each row's person by a lookup rather than a join.
    """

    people: ir.Table
    traits: ir.Table | None = None
    rfm: ir.Table | None = None
    lifecycle: ir.Table | None = None
    tags: ir.Table | None = None
    purchases: ir.Table | None = None
    events: ir.Table | None = None
    items: ir.Table | None = None
    reach: ir.Table | None = None
    groups: ir.Table | None = None
    segments: ir.Table | None = None
    buckets: ir.Table | None = None
    tallies: ir.Table | None = None
    keyed: Mapping[str, Keyed] = field(default_factory=dict)


@dataclass(frozen=True)
class Keyed:
    """An input's rows as kept: ``rows`` has the columns the input's tallies test (``Tally.where``)
    and ``key``, a small integer (null for none); ``people[key]`` is the code of the person the
    row belongs to (-1 for no one). Each person's rows are those whose key is theirs."""

    rows: ir.Table
    key: str
    people: np.ndarray


@dataclass(frozen=True)
class Moment:
    """When the rule is evaluated (relative windows end here) and the time zone dates are in."""

    as_of: datetime
    timezone: str = "Asia/Shanghai"

    @property
    def now(self) -> datetime:
        """As the inputs keep time: UTC without a zone."""
        return ensure_utc(self.as_of).replace(tzinfo=None)

    def instant(self, value: date | datetime | str, end_of_day: bool = False) -> datetime:
        """A date (its start, or with ``end_of_day`` the next day's start) or a date-time, read in
        the workspace's time zone unless it carries its own, as naive UTC."""
        if isinstance(value, str):
            value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
        if not isinstance(value, datetime):
            day = value + timedelta(days=1) if end_of_day else value
            value = datetime.combine(day, time(0))
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo(self.timezone))
        return ensure_utc(value).replace(tzinfo=None)


def compile_rule(node: Node, inputs: RuleInputs, moment: Moment) -> ir.Table:
    """The people ``node`` selects: a table with the one column ``profile_id``, each once."""
    return _Compiler(inputs, moment).people_of(node)


def compile_leaf(node: Leaf, inputs: RuleInputs, moment: Moment, repeats: bool = False) -> tuple[ir.Table, bool]:
    """A leaf's people (``profile_id``, each once), or — the flag ``True`` — the people it leaves
    out, when it selects everyone else (``not_exists``, "did it at most twice"): a caller keeping
    people as bitmaps complements those cheaply. With ``repeats``, a person may come more than
    once (a trait of several values, say): a caller marking people in a bitmap needs no pass
    making each once, which for "has no age" at 10M people was most of its time."""
    return _Compiler(inputs, moment, each_once=not repeats).leaf(node)


@dataclass(frozen=True)
class Tally:
    """A leaf that totals each person's rows of one input and tests the total: performed events
    (a count) and order aggregates (a count, a sum or a mean of amounts). ``source``: the input
    (a ``RuleInputs`` field); ``where``: which of its rows count; ``measure``: count, sum or mean
    of ``amount_fen``; the total passes when ``op`` holds against ``than``. Several tallies over
    the same input can be totalled in one pass (``tallied``)."""

    source: str
    where: Callable[[ir.Table], ir.BooleanValue]
    measure: Literal["count", "sum", "mean"]
    op: str
    than: int

    def total(self, rows: ir.Table, counted: ir.BooleanValue | None = None) -> ir.NumericValue:
        """The measure over ``rows`` (those of them ``counted``, if given); zero for none, but a
        mean of nothing is null."""
        if self.measure == "count":
            return rows.count(where=counted)
        if self.measure == "sum":
            return rows.amount_fen.sum(where=counted).coalesce(0)
        return rows.amount_fen.mean(where=counted)

    @property
    def zero_passes(self) -> bool:
        """Whether the people with no rows pass (a count or sum of nothing is zero; a mean is
        only defined for people with rows)."""
        return self.measure != "mean" and bool(_COMPARE[self.op](0, self.than))

    def passes(self, total: Any) -> Any:
        """The test on a total (an Ibis value or an array)."""
        return _COMPARE[self.op](total, self.than)


def tallied(tallies: list[Tally], inputs: RuleInputs) -> ir.Table:
    """Several tallies over one input totalled in one pass: profile_id and ``t0``, ``t1``… (each
    tally's total) for everyone with a row any of them counts."""
    [source] = {t.source for t in tallies}
    table = _need(getattr(inputs, source), source)
    rows = table.filter(ibis.or_(*(t.where(table) for t in tallies)))
    return rows.group_by("profile_id").aggregate(
        **{f"t{i}": t.total(rows, t.where(rows)) for i, t in enumerate(tallies)}
    )


def tally_column(node: Node) -> str:
    """The column a leaf's total is kept under when worked out ahead (``RuleInputs.tallies``)."""
    return "tally_" + hashlib.blake2b(repr(rule_to_dict(node)).encode(), digest_size=8).hexdigest()


def recent_purchase_tallies(nodes: Iterable[Node], moment: Moment) -> dict[str, Tally]:
    """The order aggregates among the leaves of ``nodes`` whose window ends now (the last so
    many days), by ``tally_column``: they count only purchases up to ``moment``, so a run totals
    them in the same grouping of the purchases as RFM and the stages
    (``analytics.inputs.purchase_totals``)."""
    out: dict[str, Tally] = {}
    for node in nodes:
        for _path, leaf in walk(node):
            if isinstance(leaf, Orders) and leaf.window is not None and leaf.window.days is not None:
                tally = tally_of(leaf, moment)
                assert tally is not None
                out[tally_column(leaf)] = tally
    return out


# The inputs each kind of leaf reads (``and``/``or`` read none; ``not`` reads people).
_READS: dict[type, str] = {
    Trait: "traits",
    RfmGroup: "rfm",
    RfmScore: "rfm",
    Lifecycle: "lifecycle",
    HasTag: "tags",
    Performed: "events",
    Orders: "purchases",
    Bought: "items",
    Reachable: "reach",
    CommunityGroup: "groups",
    InSegment: "segments",
    Bucket: "buckets",
}


def inputs_needed(node: Node) -> set[str]:
    """The names of the ``RuleInputs`` tables a rule reads (people always)."""
    needed = {"people"}
    stack = [node]
    while stack:
        current = stack.pop()
        match current:
            case All() | AnyOf():
                stack += current.conditions
            case Not():
                stack.append(current.condition)
            case _:
                needed.add(_READS[type(current)])
    return needed


def restricted(inputs: RuleInputs, profile_ids: list[str]) -> RuleInputs:
    """The inputs cut down to some people's rows: evaluating a rule on them gives those people's
    part of the bulk result. (Without the rows as kept by other keys, ``keyed``.)"""
    changes: dict[str, ir.Table] = {}
    for f in fields(inputs):
        table = getattr(inputs, f.name)
        if f.name != "keyed" and table is not None:
            changes[f.name] = table.filter(table.profile_id.isin(profile_ids))
    return replace(inputs, keyed={}, **changes)


class _Compiler:
    def __init__(self, inputs: RuleInputs, moment: Moment, each_once: bool = True) -> None:
        self.inputs, self.moment, self.each_once = inputs, moment, each_once

    def _ids(self, table: ir.Table) -> ir.Table:
        """The people of ``table``'s rows: each once, unless the caller takes them repeated."""
        return _ids(table) if self.each_once else _once(table)

    def people_of(self, node: Node) -> ir.Table:
        match node:
            case All():
                return self._all(node)
            case AnyOf():
                parts = [self.people_of(c) for c in node.conditions]
                return parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=True)
            case Not():
                return _without(self._everyone(), self.people_of(node.condition))
            case _:
                table, complement = self.leaf(node)
                return _without(self._everyone(), table) if complement else table

    def leaf(self, node: Leaf) -> tuple[ir.Table, bool]:
        """A leaf's people, or (``True``) the people it leaves out when it selects everyone else."""
        match node:
            case Trait():
                return self._trait(node)
            case RfmGroup():
                rfm = _need(self.inputs.rfm, "rfm")
                return _once(rfm.filter(rfm.rfm_group.isin(node.groups))), False
            case RfmScore():
                rfm = _need(self.inputs.rfm, "rfm")
                return _once(rfm.filter(_COMPARE[node.op](rfm[f"{node.score}_score"], node.value))), False
            case Lifecycle():
                stages = _need(self.inputs.lifecycle, "lifecycle")
                return _once(stages.filter(stages.stage.isin(node.stages))), False
            case HasTag():
                tags = _need(self.inputs.tags, "tags")
                held = tags.filter(tags.tag_id == node.tag_id)
                if node.values is not None:
                    held = held.filter(held.value.isin(node.values))
                return self._ids(held), False
            case Performed() | Orders():
                tally = tally_of(node, self.moment)
                assert tally is not None
                ahead, column = self.inputs.tallies, tally_column(node)
                if ahead is not None and column in ahead.columns:
                    totals = ahead.select("profile_id", v=ahead[column])
                else:
                    table = _need(getattr(self.inputs, tally.source), tally.source)
                    rows = table.filter(tally.where(table))
                    totals = rows.group_by("profile_id").aggregate(v=tally.total(rows))
                if tally.zero_passes:  # everyone but those whose total fails (no rows: zero, passing)
                    return _once(totals.filter(~tally.passes(totals.v))), True
                return _once(totals.filter(tally.passes(totals.v))), False
            case Bought():
                items = _need(self.inputs.items, "items")
                chosen = items.filter(items[node.field].isin(node.values))
                return self._ids(self._within(chosen, "at", node.window)), False
            case Reachable():
                reach = _need(self.inputs.reach, "reach")
                return _once(reach.filter(reach.channel == node.channel, reach.purpose == node.purpose)), False
            case CommunityGroup():
                groups = _need(self.inputs.groups, "groups")
                chosen = groups.filter(groups.group_id.isin(node.groups))
                return (self._ids(chosen) if len(node.groups) > 1 else _once(chosen)), False
            case InSegment():
                members = _need(self.inputs.segments, "segments")
                return self._ids(members.filter(members.segment_id == node.segment_id)), False
            case Bucket():
                buckets = _need(self.inputs.buckets, "buckets")
                drawn = buckets.filter(buckets.seed == node.seed)
                return _once(drawn.filter(drawn.bucket >= node.from_, drawn.bucket < node.to)), False
            case _:
                assert_never(node)

    def _everyone(self) -> ir.Table:
        return self.inputs.people.select("profile_id")

    def _all(self, node: All) -> ir.Table:
        included = [self.people_of(c) for c in node.conditions if not isinstance(c, Not)]
        excluded = [self.people_of(c.condition) for c in node.conditions if isinstance(c, Not)]
        if not included:
            out = self._everyone()
        elif len(included) == 1:
            out = included[0]
        else:
            out = included[0]
            for part in included[1:]:
                out = out.semi_join(part, out.profile_id == part.profile_id)
        for part in excluded:
            out = _without(out, part)
        return out

    def _trait(self, node: Trait) -> tuple[ir.Table, bool]:
        traits = _need(self.inputs.traits, "traits")
        rows = traits.filter(traits.key == node.key)
        if node.op == "exists":
            return self._ids(rows), False
        if node.op == "not_exists":
            return self._ids(rows), True
        if node.op == "excludes":
            having = self._ids(rows)
            return _without(having, self._ids(rows.filter(rows.text.isin(node.value)))), False
        return self._ids(rows.filter(self._trait_test(node, rows))), False

    def _trait_test(self, node: Trait, rows: ir.Table) -> ir.BooleanValue:
        op, value = node.op, node.value
        if node.value_type == "number":
            if op == "between":
                return rows.number.between(value[0], value[1])
            return rows.number.notnull() & _COMPARE[op](rows.number, value)
        if node.value_type == "date":
            at = rows.time
            if op == "before":
                return at < self.moment.instant(value)
            if op == "after":
                return at >= self.moment.instant(value, end_of_day=True)
            if op == "between":
                return (at >= self.moment.instant(value[0])) & (at < self.moment.instant(value[1], end_of_day=True))
            if op == "within_last_days":
                return (at >= self.moment.now - timedelta(days=value)) & (at <= self.moment.now)
            return at < self.moment.now - timedelta(days=value)  # more_than_days_ago
        if node.value_type == "boolean":
            return rows.flag == (op == "is_true")
        text = rows.text
        if node.value_type == "list":  # includes
            return (rows.kind == "l") & text.isin(value)
        plain = rows.kind != "l"
        tests: dict[str, Callable[[], ir.BooleanValue]] = {
            "eq": lambda: text == value,
            "ne": lambda: text != value,
            "in": lambda: text.isin(value),
            "not_in": lambda: text.notin(value),
            "contains": lambda: text.contains(value),
            "starts_with": lambda: text.startswith(value),
        }
        return plain & text.notnull() & tests[op]()

    def _within(self, table: ir.Table, column: str, window: Window | None) -> ir.Table:
        tests = _window(table[column], window, self.moment)
        return table.filter(*tests) if tests else table


_MEASURES: dict[str, Literal["count", "sum", "mean"]] = {"count": "count", "total_fen": "sum", "average_fen": "mean"}


def tally_of(node: Node, moment: Moment) -> Tally | None:
    """The node as a tally, if it is one."""
    match node:
        case Performed():
            filters = node.where or []

            def done(rows: ir.Table) -> ir.BooleanValue:
                tests = [rows.event == node.event, *_window(rows.timestamp, node.window, moment)]
                return ibis.and_(*tests, *(_property_test(rows, f) for f in filters))

            return Tally("events", done, "count", node.op, node.count)
        case Orders():

            def bought(rows: ir.Table) -> ir.BooleanValue:
                tests = _window(rows.at, node.window, moment)
                if node.platform is not None:
                    tests.append(rows.platform == node.platform)
                if node.store is not None:
                    tests.append(rows.store == node.store)
                return ibis.and_(*tests) if tests else ibis.literal(True)

            return Tally("purchases", bought, _MEASURES[node.measure], node.op, node.value)
        case _:
            return None


def _window(at: ir.TimestampValue, window: Window | None, moment: Moment) -> list[ir.BooleanValue]:
    """The tests a time must pass to fall in the window (none without one)."""
    if window is None:
        return []
    if window.days is not None:
        now = moment.now
        return [at >= now - timedelta(days=window.days), at <= now]
    tests = []
    if window.since is not None:
        tests.append(at >= moment.instant(window.since))
    if window.until is not None:
        tests.append(at < moment.instant(window.until, end_of_day=True))
    return tests


def _property_test(events: ir.Table, test: PropertyFilter) -> ir.BooleanValue:
    """The property read from the event's JSON as text (a number as its digits); number tests
    read text that is a number as one, and fail anything else. A test on a property the event
    lacks fails (its null is taken as false: the property is read once, not again to test it is
    there, which at 5M events cost as much as the test)."""
    text = _json_text(events.properties, test.key)
    if test.op == "exists":
        return text.notnull()
    numeric = test.op in ("gt", "gte", "lt", "lte") or (test.op in ("eq", "ne") and not isinstance(test.value, str))
    if numeric:
        number = ibis.ifelse(text.re_search(_NUMBER), text, ibis.null("string")).cast("float64")
        return _COMPARE[test.op](number, float(test.value)).fill_null(False)
    tests: dict[str, Callable[[], ir.BooleanValue]] = {
        "eq": lambda: text == test.value,
        "ne": lambda: text != test.value,
        "in": lambda: text.isin(test.value),
        "not_in": lambda: text.notin(test.value),
        "contains": lambda: text.contains(test.value),
    }
    return tests[test.op]().fill_null(False)


_NUMBER = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"


@ibis.udf.scalar.builtin(name="json_extract_string")  # type: ignore[untyped-decorator]
def _duckdb_json_text(document: str, path: str) -> str:  # type: ignore[empty-body]
    """DuckDB's own function."""


@ibis.udf.scalar.builtin(name="get_json_object")  # type: ignore[untyped-decorator]
def _spark_json_text(document: str, path: str) -> str:  # type: ignore[empty-body]
    """Spark's own function."""


@ibis.udf.scalar.builtin(name="json_extract_path_text")  # type: ignore[untyped-decorator]
def _postgres_json_text(document: dt.JSON, key: str) -> str:  # type: ignore[empty-body]
    """PostgreSQL's own function."""


def _json_text(document: ir.StringValue, key: str) -> ir.StringValue:
    """A key of a JSON object held as text, as text, with each engine's own function: Ibis's JSON
    reading differs between them (and needs Python on Spark's workers)."""
    backend = _backend_name(document)
    if backend == "postgres":
        return _postgres_json_text(document.cast("json"), key)
    if backend == "pyspark":
        return _spark_json_text(document, f"$.{key}")
    return _duckdb_json_text(document, f"$.{key}")


def _backend_name(value: ir.Value) -> str:
    try:
        return str(value._find_backend().name)
    except Exception:  # an unbound expression: DuckDB is the default engine
        return "duckdb"


def _without(people: ir.Table, leaving: ir.Table) -> ir.Table:
    """``people`` (each once) less those in ``leaving``: an anti-join, which unlike a set
    difference needs no distinct pass over either side."""
    return people.anti_join(leaving, people.profile_id == leaving.profile_id)


def _ids(table: ir.Table) -> ir.Table:
    return table.select("profile_id").distinct()


def _once(table: ir.Table) -> ir.Table:
    """The people of rows known to name each person at most once: no distinct pass needed."""
    return table.select("profile_id")


def _need(table: ir.Table | None, name: str) -> ir.Table:
    if table is None:
        raise ValueError(f"this rule reads {name}, which the caller did not provide")
    return table
