"""The tag library: categories as a tree, and tags checked before they are saved — a rule tag's
rule against the workspace's catalog (names, types, and no tag depending on itself through
others), a computed tag's source against the known ones. Nothing invalid is ever stored, so the
batch run never meets a rule it cannot compile."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.core.errors import ConflictError, NotFoundError, ValidationFailedError
from siyu.profiles.facade import drop_tag
from siyu.rules.catalog import Catalog, check_rule, segments_used, tags_used
from siyu.rules.dependencies import depends_on_itself
from siyu.rules.dependencies import evaluation_order as dependency_order
from siyu.rules.nodes import parse_rule, rule_to_dict
from siyu.tags.contracts import COMPUTED_SOURCES, CategoryPublic, TagDraft, TagPublic
from siyu.tags.tables import Tag, TagCategory

MAX_TAGS = 5_000


def tag_to_public(row: Tag) -> TagPublic:
    return TagPublic(
        row.id,
        row.name,
        row.kind,
        row.description,
        row.owner,
        row.category_id,
        row.rule,
        row.computed,
        row.people,
        row.evaluated_at,
        row.created_at,
        row.updated_at,
    )


def list_tags(scoped: Session, category_id: str | None = None, kind: str | None = None) -> list[TagPublic]:
    stmt = select(Tag).order_by(Tag.name)
    if category_id is not None:
        stmt = stmt.where(Tag.category_id == category_id)
    if kind is not None:
        stmt = stmt.where(Tag.kind == kind)
    return [tag_to_public(r) for r in scoped.scalars(stmt)]


def get_tag_row(scoped: Session, tag_id: str) -> Tag:
    row = scoped.scalar(select(Tag).where(Tag.id == tag_id))
    if row is None:
        raise NotFoundError("tag not found")
    return row


def create_tag(scoped: Session, draft: TagDraft, catalog: Catalog, actor_id: str | None) -> TagPublic:
    if (scoped.scalar(select(func.count()).select_from(Tag)) or 0) >= MAX_TAGS:
        raise ValidationFailedError(f"a workspace holds at most {MAX_TAGS} tags")
    row = Tag(created_by=actor_id)
    _apply(scoped, row, draft, catalog)
    scoped.add(row)
    _flush_named(scoped, draft.name)
    return tag_to_public(row)


def update_tag(scoped: Session, tag_id: str, draft: TagDraft, catalog: Catalog) -> TagPublic:
    row = get_tag_row(scoped, tag_id)
    if draft.kind != row.kind:
        raise ValidationFailedError("a tag's kind cannot change; create a new tag", details={"path": "kind"})
    _apply(scoped, row, draft, catalog)
    _flush_named(scoped, draft.name)
    return tag_to_public(row)


def delete_tag(scoped: Session, tag_id: str) -> None:
    """Delete a tag no rule asks about, and take it off everyone."""
    row = get_tag_row(scoped, tag_id)
    users = [t.name for t in scoped.scalars(select(Tag).where(Tag.kind == "rule")) if tag_id in _rule_tags(t)]
    if users:
        raise ConflictError(f"the rules of {', '.join(users)} ask about this tag", details={"used_by": users})
    drop_tag(scoped, tag_id)
    scoped.delete(row)


def _rule_tags(row: Tag) -> set[str]:
    return tags_used(parse_rule(row.rule)) if row.rule else set()


def _apply(scoped: Session, row: Tag, draft: TagDraft, catalog: Catalog) -> None:
    name = draft.name.strip()
    if not name or len(name) > 60:
        raise ValidationFailedError("a tag needs a name of 1 to 60 characters", details={"path": "name"})
    if draft.category_id is not None and _category(scoped, draft.category_id) is None:
        raise ValidationFailedError("unknown category", details={"path": "category_id"})
    row.name, row.kind = name, draft.kind
    row.description, row.owner, row.category_id = draft.description[:500], draft.owner[:100], draft.category_id
    row.rule, row.computed = None, None
    if draft.kind == "rule":
        if draft.rule is None:
            raise ValidationFailedError("a rule tag needs a rule", details={"path": "rule"})
        node = parse_rule(draft.rule)
        if segments_used(node):
            raise ValidationFailedError(
                "a tag's rule cannot ask about segments: segments are worked out from tags, after them",
                details={"problems": [{"path": "rule", "message": "segment conditions belong in segments"}]},
            )
        check_rule(node, catalog)
        _refuse_cycles(scoped, row.id, tags_used(node), catalog)
        row.rule = rule_to_dict(node)
    elif draft.kind == "computed":
        source = (draft.computed or {}).get("source")
        if source not in COMPUTED_SOURCES or set(draft.computed or {}) != {"source"}:
            raise ValidationFailedError(
                f"a computed tag needs computed.source, one of {', '.join(COMPUTED_SOURCES)}",
                details={"path": "computed.source"},
            )
        row.computed = {"source": source}
    elif draft.rule is not None or draft.computed is not None:
        raise ValidationFailedError("a manual tag has neither rule nor computed value", details={"path": "kind"})


def _refuse_cycles(scoped: Session, tag_id: str | None, asked: set[str], catalog: Catalog) -> None:
    """Refuse a rule that asks, directly or through other rule tags, about its own tag."""
    if tag_id is None:
        return
    rules = {t.id: _rule_tags(t) for t in scoped.scalars(select(Tag).where(Tag.kind == "rule", Tag.id != tag_id))}
    if depends_on_itself(tag_id, asked, rules):
        name = catalog.tags[next(iter(asked))].name if asked else ""
        raise ValidationFailedError(
            f"the rule depends on its own tag (through {name!r})", details={"problems": [{"path": "rule"}]}
        )


def _flush_named(scoped: Session, name: str) -> None:
    try:
        with scoped.begin_nested():
            scoped.flush()
    except IntegrityError:
        raise ConflictError(f"a tag named {name!r} already exists", details={"path": "name"}) from None


def evaluation_order(scoped: Session) -> list[Tag]:
    """The computed tags, then the rule tags, each rule tag after the rule tags it asks about."""
    computed = list(scoped.scalars(select(Tag).where(Tag.kind == "computed").order_by(Tag.id)))
    rules = {t.id: t for t in scoped.scalars(select(Tag).where(Tag.kind == "rule").order_by(Tag.id))}
    order = dependency_order({tag_id: _rule_tags(tag) for tag_id, tag in rules.items()})
    return computed + [rules[tag_id] for tag_id in order]


# Categories -------------------------------------------------------------------------------


def category_tree(scoped: Session) -> list[CategoryPublic]:
    rows = list(scoped.scalars(select(TagCategory).order_by(TagCategory.position, TagCategory.name)))
    children: dict[str | None, list[TagCategory]] = {}
    for r in rows:
        children.setdefault(r.parent_id, []).append(r)

    def build(parent: str | None) -> list[CategoryPublic]:
        return [CategoryPublic(c.id, c.name, c.parent_id, c.position, build(c.id)) for c in children.get(parent, [])]

    return build(None)


def create_category(scoped: Session, name: str, parent_id: str | None = None, position: int = 0) -> CategoryPublic:
    name = name.strip()
    if not name or len(name) > 60:
        raise ValidationFailedError("a category needs a name of 1 to 60 characters", details={"path": "name"})
    if parent_id is not None and _category(scoped, parent_id) is None:
        raise ValidationFailedError("unknown parent category", details={"path": "parent_id"})
    row = TagCategory(name=name, parent_id=parent_id, position=position)
    scoped.add(row)
    try:
        with scoped.begin_nested():
            scoped.flush()
    except IntegrityError:
        raise ConflictError(f"the category {name!r} already exists there", details={"path": "name"}) from None
    return CategoryPublic(row.id, row.name, row.parent_id, row.position)


def delete_category(scoped: Session, category_id: str) -> None:
    row = _category(scoped, category_id)
    if row is None:
        raise NotFoundError("category not found")
    in_use = scoped.scalar(select(func.count()).select_from(Tag).where(Tag.category_id == category_id)) or 0
    nested = scoped.scalar(select(func.count()).select_from(TagCategory).where(TagCategory.parent_id == category_id))
    if in_use or nested:
        raise ConflictError("the category still holds tags or categories; move or delete them first")
    scoped.delete(row)


def _category(scoped: Session, category_id: str) -> TagCategory | None:
    return scoped.scalar(select(TagCategory).where(TagCategory.id == category_id))
