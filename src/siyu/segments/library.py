"""The segment library: segments checked before they are saved — a dynamic segment's rule against
the workspace's catalog (names, types, and no segment depending on itself through others) — so the
batch run never meets a rule it cannot compile, and nothing malformed ever selects everyone."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.core.errors import ConflictError, NotFoundError, ValidationFailedError
from siyu.rules.catalog import Catalog, check_rule, segments_used
from siyu.rules.dependencies import depends_on_itself
from siyu.rules.dependencies import evaluation_order as dependency_order
from siyu.rules.nodes import parse_rule, rule_to_dict
from siyu.segments.contracts import SegmentDraft, SegmentPublic
from siyu.segments.tables import Segment

MAX_SEGMENTS = 2_000


def segment_to_public(row: Segment) -> SegmentPublic:
    return SegmentPublic(
        row.id,
        row.name,
        row.kind,
        row.description,
        row.rule,
        row.frozen_from,
        row.people,
        row.refreshed_at,
        row.created_by,
        row.created_at,
        row.updated_at,
    )


def list_segments(scoped: Session, kind: str | None = None) -> list[SegmentPublic]:
    stmt = select(Segment).order_by(Segment.name)
    if kind is not None:
        stmt = stmt.where(Segment.kind == kind)
    return [segment_to_public(r) for r in scoped.scalars(stmt)]


def get_segment_row(scoped: Session, segment_id: str) -> Segment:
    row = scoped.scalar(select(Segment).where(Segment.id == segment_id))
    if row is None:
        raise NotFoundError("segment not found")
    return row


def segment_names(scoped: Session) -> dict[str, str]:
    """Every segment as rules may name it (id → name)."""
    return {r.id: r.name for r in scoped.scalars(select(Segment))}


def create_segment(
    scoped: Session, draft: SegmentDraft, catalog: Catalog, actor_id: str | None, frozen_from: str | None = None
) -> Segment:
    if (scoped.scalar(select(func.count()).select_from(Segment)) or 0) >= MAX_SEGMENTS:
        raise ValidationFailedError(f"a workspace holds at most {MAX_SEGMENTS} segments")
    row = Segment(created_by=actor_id, frozen_from=frozen_from)
    _apply(scoped, row, draft, catalog)
    scoped.add(row)
    flush_named(scoped, row.name)
    return row


def update_segment(scoped: Session, segment_id: str, draft: SegmentDraft, catalog: Catalog) -> SegmentPublic:
    row = get_segment_row(scoped, segment_id)
    if draft.kind != row.kind:
        raise ValidationFailedError("a segment's kind cannot change; create a new segment", details={"path": "kind"})
    _apply(scoped, row, draft, catalog)
    flush_named(scoped, row.name)
    return segment_to_public(row)


def delete_segment(scoped: Session, segment_id: str) -> None:
    """Delete a segment no other segment's rule asks about (its members and sizes go with it)."""
    row = get_segment_row(scoped, segment_id)
    users = [s.name for s in _dynamic(scoped) if segment_id in _asked(s)]
    if users:
        raise ConflictError(f"the rules of {', '.join(users)} ask about this segment", details={"used_by": users})
    scoped.delete(row)
    scoped.flush()


def _apply(scoped: Session, row: Segment, draft: SegmentDraft, catalog: Catalog) -> None:
    name = draft.name.strip()
    if not name or len(name) > 80:
        raise ValidationFailedError("a segment needs a name of 1 to 80 characters", details={"path": "name"})
    row.name, row.kind, row.description = name, draft.kind, draft.description[:500]
    if draft.kind == "dynamic":
        if draft.rule is None:
            raise ValidationFailedError("a dynamic segment needs a rule", details={"path": "rule"})
        node = parse_rule(draft.rule)
        check_rule(node, catalog)
        _refuse_cycles(scoped, row.id, segments_used(node), catalog)
        row.rule = rule_to_dict(node)
    elif draft.rule is not None:
        raise ValidationFailedError(
            "a static segment has no rule: it keeps the people it was given", details={"path": "rule"}
        )
    else:
        row.rule = None


def _asked(row: Segment) -> set[str]:
    return segments_used(parse_rule(row.rule)) if row.rule else set()


def _dynamic(scoped: Session) -> Sequence[Segment]:
    return list(scoped.scalars(select(Segment).where(Segment.kind == "dynamic").order_by(Segment.id)))


def _refuse_cycles(scoped: Session, segment_id: str | None, asked: set[str], catalog: Catalog) -> None:
    """Refuse a rule that asks, directly or through other segments, about its own segment."""
    if segment_id is None:
        return
    rules = {s.id: _asked(s) for s in _dynamic(scoped) if s.id != segment_id}
    if depends_on_itself(segment_id, asked, rules):
        through = catalog.segments.get(next(iter(sorted(asked))), "") if asked else ""
        raise ValidationFailedError(
            f"the rule depends on its own segment (through {through!r})",
            details={"problems": [{"path": "rule", "message": "a segment cannot contain itself"}]},
        )


def flush_named(scoped: Session, name: str, noun: str = "segment") -> None:
    try:
        with scoped.begin_nested():
            scoped.flush()
    except IntegrityError:
        raise ConflictError(f"a {noun} named {name!r} already exists", details={"path": "name"}) from None


def evaluation_order(scoped: Session) -> list[Segment]:
    """The dynamic segments, each after the segments its rule asks about."""
    rules = {s.id: s for s in _dynamic(scoped)}
    return [rules[i] for i in dependency_order({i: _asked(s) for i, s in rules.items()})]
