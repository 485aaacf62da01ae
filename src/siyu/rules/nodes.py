"""The rule language: a closed set of typed nodes, as operators author them (JSON) and as the
compiler reads them. Tags and segments use the same nodes and compiler.

A rule is a tree: ``and`` / ``or`` over one or more conditions, ``not`` over one, and leaves that
each ask one thing of a person — a trait, their RFM group or scores, lifecycle stage, a tag,
how often they did an event or bought, what they bought, whether they can be reached on a
channel, which community groups and segments they are in — or draw a stable random share.
Parsing checks the shape (every field, operator and value type); ``check_rule`` then checks the
names against the workspace's catalog.
Nothing here falls back to a permissive default: an empty group is an error, not "everyone".
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from siyu.core.errors import ValidationFailedError

MAX_CONDITIONS = 50  # in one group
MAX_DEPTH = 6
MAX_VALUES = 1000  # in one list of values

TraitType = Literal["string", "number", "date", "boolean", "list"]
Comparison = Literal["eq", "ne", "gt", "gte", "lt", "lte"]
# The operators each trait type accepts; ``exists`` / ``not_exists`` go with every type.
TRAIT_OPERATORS: dict[str, frozenset[str]] = {
    "string": frozenset({"eq", "ne", "in", "not_in", "contains", "starts_with"}),
    "number": frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "between"}),
    "date": frozenset({"before", "after", "between", "within_last_days", "more_than_days_ago"}),
    "boolean": frozenset({"is_true", "is_false"}),
    "list": frozenset({"includes", "excludes"}),
}
PRESENCE = frozenset({"exists", "not_exists"})
WITHOUT_VALUE = PRESENCE | {"is_true", "is_false"}


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Node):
    """When: the last ``days`` days before the evaluation moment, or from ``since`` up to ``until``
    (dates in the workspace's time zone; either may be open). No window means ever."""

    days: int | None = Field(default=None, ge=1, le=3650)
    since: date | datetime | None = None
    until: date | datetime | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Window:
        if self.days is None and self.since is None and self.until is None:
            raise ValueError("give days, or since and/or until")
        if self.days is not None and (self.since is not None or self.until is not None):
            raise ValueError("give either days or since/until, not both")
        if self.since is not None and self.until is not None and _as_key(self.since) >= _as_key(self.until):
            raise ValueError("since must be before until")
        return self


def _as_key(value: date | datetime) -> str:
    return value.isoformat()


class Trait(_Node):
    """A trait's value: ``value_type`` says how to read it and must be the trait's type."""

    type: Literal["trait"]
    key: str = Field(min_length=1, max_length=100)
    value_type: TraitType
    op: str
    value: Any = None

    @model_validator(mode="after")
    def _operator_fits(self) -> Trait:
        allowed = TRAIT_OPERATORS[self.value_type] | PRESENCE
        if self.op not in allowed:
            raise ValueError(f"{self.op!r} does not apply to a {self.value_type} trait; use one of {sorted(allowed)}")
        if self.op in WITHOUT_VALUE:
            if self.value is not None:
                raise ValueError(f"{self.op!r} takes no value")
            return self
        _check_value(self.value_type, self.op, self.value)
        return self


def _check_value(value_type: str, op: str, value: Any) -> None:
    if op in ("in", "not_in", "includes", "excludes"):
        if not isinstance(value, list) or not value or len(value) > MAX_VALUES:
            raise ValueError(f"{op!r} needs a list of 1 to {MAX_VALUES} strings")
        if not all(isinstance(v, str) for v in value):
            raise ValueError(f"{op!r} needs strings")
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError("'between' needs [low, high]")
        low, high = (_scalar(value_type, v) for v in value)
        if low > high:
            raise ValueError("'between' needs low ≤ high")
    elif op in ("within_last_days", "more_than_days_ago"):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 36500:
            raise ValueError(f"{op!r} needs a whole number of days from 1 to 36500")
    else:
        _scalar(value_type, value)


def _scalar(value_type: str, value: Any) -> Any:
    if value_type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("a number trait is compared with a number")
        return value
    if value_type == "date":
        if not isinstance(value, str):
            raise ValueError("a date trait is compared with a date like 2026-01-31")
        try:
            return datetime.fromisoformat(value).replace(tzinfo=None)
        except ValueError:
            raise ValueError(f"{value!r} is not a date like 2026-01-31") from None
    if not isinstance(value, str) or not value:
        raise ValueError("a string trait is compared with a non-empty string")
    return value


class RfmGroup(_Node):
    type: Literal["rfm_group"]
    groups: list[str] = Field(min_length=1, max_length=8)


class RfmScore(_Node):
    type: Literal["rfm_score"]
    score: Literal["r", "f", "m"]
    op: Comparison
    value: int = Field(ge=1, le=5)


class Lifecycle(_Node):
    type: Literal["lifecycle"]
    stages: list[str] = Field(min_length=1, max_length=20)


class HasTag(_Node):
    """Has the tag (with one of ``values``, for a computed tag, when given)."""

    type: Literal["tag"]
    tag_id: str = Field(min_length=1, max_length=32)
    values: list[str] | None = Field(default=None, min_length=1, max_length=MAX_VALUES)


PROPERTY_OPERATORS = frozenset({"eq", "ne", "in", "not_in", "contains", "gt", "gte", "lt", "lte", "exists"})


class PropertyFilter(_Node):
    """A test of one property of the event: text (``eq`` ``ne`` ``in`` ``not_in`` ``contains``),
    number (``eq`` ``ne`` ``gt`` ``gte`` ``lt`` ``lte`` with a number), or ``exists``. An event
    without the property fails every test but ``ne`` and ``not_in`` fail it too."""

    key: str = Field(min_length=1, max_length=100, pattern=r"^\w+$")  # letters, digits, _
    op: str
    value: Any = None

    @model_validator(mode="after")
    def _operator_fits(self) -> PropertyFilter:
        if self.op not in PROPERTY_OPERATORS:
            raise ValueError(f"{self.op!r} is not a property test; use one of {sorted(PROPERTY_OPERATORS)}")
        if self.op == "exists":
            if self.value is not None:
                raise ValueError("'exists' takes no value")
        elif self.op in ("in", "not_in"):
            _check_value("string", self.op, self.value)
        elif self.op in ("gt", "gte", "lt", "lte"):
            _scalar("number", self.value)
        elif self.op == "contains":
            _scalar("string", self.value)
        elif isinstance(self.value, bool) or not isinstance(self.value, str | int | float) or self.value == "":
            raise ValueError(f"{self.op!r} compares with a non-empty string or a number")
        return self


class Performed(_Node):
    """Did the event (with properties passing every test of ``where``) a number of times, in the
    window."""

    type: Literal["event"]
    event: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] | None = Field(default=None, min_length=1, max_length=10)
    op: Comparison = "gte"
    count: int = Field(default=1, ge=0, le=1_000_000)
    window: Window | None = None


class Orders(_Node):
    """An aggregate of the person's purchases (paid, neither cancelled nor refunded) in the
    window: how many, their total or average amount in fen; optionally only on one platform or
    store."""

    type: Literal["orders"]
    measure: Literal["count", "total_fen", "average_fen"] = "count"
    op: Comparison = "gte"
    value: int = Field(ge=0)
    window: Window | None = None
    platform: str | None = Field(default=None, min_length=1, max_length=40)
    store: str | None = Field(default=None, min_length=1, max_length=200)


class Bought(_Node):
    """Bought (in a purchase of the window) a product of one of the categories, brands or SKUs."""

    type: Literal["bought"]
    field: Literal["category", "brand", "sku"]
    values: list[str] = Field(min_length=1, max_length=MAX_VALUES)
    window: Window | None = None


ReachChannel = Literal["sms", "email", "wechat_oa", "miniprogram", "wecom", "app_push", "ads"]


class Reachable(_Node):
    """Can be sent to on the channel: has an address there (a phone for SMS, an email, an openid,
    a WeCom external contact, a device) whose latest consent for ``purpose`` is a grant."""

    type: Literal["reachable"]
    channel: ReachChannel
    purpose: Literal["marketing", "audience_upload"] = "marketing"

    @model_validator(mode="after")
    def _purpose_fits(self) -> Reachable:
        if (self.channel == "ads") != (self.purpose == "audience_upload"):
            raise ValueError("audience upload consent goes with the 'ads' channel, marketing with the others")
        return self


class CommunityGroup(_Node):
    """Belongs to one of the community groups (社群), as group calls associated them."""

    type: Literal["community_group"]
    groups: list[str] = Field(min_length=1, max_length=MAX_VALUES)


class InSegment(_Node):
    """Is a member of another segment now."""

    type: Literal["segment"]
    segment_id: str = Field(min_length=1, max_length=32)


BUCKETS = 10_000


class Bucket(_Node):
    """A stable random share of people: those whose bucket for ``seed`` (0 to 9999, from a hash
    of the seed and their id, so a person keeps theirs) is in [``from``, ``to``). Buckets are
    hundredths of a percent: from 0 to 1000 is 10 % of people."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["bucket"]
    seed: str = Field(min_length=1, max_length=60)
    from_: int = Field(alias="from", ge=0, lt=BUCKETS)
    to: int = Field(gt=0, le=BUCKETS)

    @model_validator(mode="after")
    def _rising(self) -> Bucket:
        if self.from_ >= self.to:
            raise ValueError("'from' must be below 'to'")
        return self


class All(_Node):
    type: Literal["and"]
    conditions: list[Node] = Field(min_length=1, max_length=MAX_CONDITIONS)


class AnyOf(_Node):
    type: Literal["or"]
    conditions: list[Node] = Field(min_length=1, max_length=MAX_CONDITIONS)


class Not(_Node):
    type: Literal["not"]
    condition: Node


Leaf = (
    Trait
    | RfmGroup
    | RfmScore
    | Lifecycle
    | HasTag
    | Performed
    | Orders
    | Bought
    | Reachable
    | CommunityGroup
    | InSegment
    | Bucket
)
Node = Annotated[All | AnyOf | Not | Leaf, Field(discriminator="type")]
for _model in (All, AnyOf, Not):
    _model.model_rebuild()
_NODE: TypeAdapter[Node] = TypeAdapter(Node)


def parse_rule(data: Any) -> Node:
    """The rule ``data`` describes, or ValidationFailedError naming each problem's place in it
    (``conditions.1.op``)."""
    try:
        node = _NODE.validate_python(data)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
        message = f"the rule is not valid: {problems[0]['message']}"
        raise ValidationFailedError(message, details={"problems": problems}) from None
    depth = _depth(node)
    if depth > MAX_DEPTH:
        raise ValidationFailedError(
            f"the rule nests {depth} levels deep; at most {MAX_DEPTH}",
            details={"problems": [{"path": "", "message": f"nested more than {MAX_DEPTH} levels"}]},
        )
    return node


def rule_to_dict(node: Node) -> dict[str, Any]:
    return node.model_dump(mode="json", exclude_none=True, by_alias=True)


def _problem(error: Any) -> dict[str, str]:
    # Drop the discriminator tags pydantic puts in the location ("conditions.0.trait.op").
    kinds = {
        "and",
        "or",
        "not",
        "trait",
        "rfm_group",
        "rfm_score",
        "lifecycle",
        "tag",
        "event",
        "orders",
        "bought",
        "reachable",
        "community_group",
        "segment",
        "bucket",
    }
    path = [str(p) for p in error["loc"] if not (isinstance(p, str) and p in kinds)]
    message = str(error["msg"]).removeprefix("Value error, ")
    return {"path": ".".join(path), "message": message}


def _depth(node: Node) -> int:
    match node:
        case All() | AnyOf():
            return 1 + max(_depth(c) for c in node.conditions)
        case Not():
            return 1 + _depth(node.condition)
        case _:
            return 1


def walk(node: Node, path: str = "") -> list[tuple[str, Node]]:
    """Every node of the rule with its path, parents first."""
    out: list[tuple[str, Node]] = [(path, node)]
    match node:
        case All() | AnyOf():
            for i, child in enumerate(node.conditions):
                out += walk(child, f"{path}.conditions.{i}".lstrip("."))
        case Not():
            out += walk(node.condition, f"{path}.condition".lstrip("."))
    return out
