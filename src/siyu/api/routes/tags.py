"""The tag library (categories and tags), manual tagging of one person, many, or a file of
identifiers, and each tag's history and coverage trend."""

from __future__ import annotations

import shutil
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.analytics.facade import option_names, rule_catalog
from siyu.api.deps import Analyst, Operator, ScopedSessionDep, SettingsDep
from siyu.api.errors import COMMON_ERRORS
from siyu.api.paths import TagId
from siyu.api.schemas import PagePublic
from siyu.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from siyu.tags import facade
from siyu.tags.contracts import COMPUTED_NAMES, CategoryPublic, TagDraft, TagPublic

router = APIRouter(prefix="/api/v1/tags", tags=["tags"], responses=COMMON_ERRORS)
MAX_REJECTED_SHOWN = 1_000


class TagIn(BaseModel):
    name: str = Field(max_length=60)
    kind: Literal["manual", "rule", "computed"]
    description: str = Field(default="", max_length=500)
    owner: str = Field(default="", max_length=100)
    category_id: str | None = None
    rule: dict[str, Any] | None = Field(default=None, description="for rule tags: the rule (see the rule language)")
    computed: dict[str, Any] | None = Field(default=None, description='for computed tags: {"source": …}')

    def draft(self) -> TagDraft:
        return TagDraft(**self.model_dump())


class TagOut(BaseModel):
    id: str
    name: str
    kind: Literal["manual", "rule", "computed"]
    description: str
    owner: str
    category_id: str | None
    rule: dict[str, Any] | None
    computed: dict[str, Any] | None
    people: int
    evaluated_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, tag: TagPublic) -> TagOut:
        return cls.model_validate(tag.__dict__)


class CategoryIn(BaseModel):
    name: str = Field(max_length=60)
    parent_id: str | None = None
    position: int = Field(default=0, ge=0, le=100_000, description="the order among its siblings")


class CategoryOut(BaseModel):
    id: str
    name: str
    parent_id: str | None
    position: int
    children: list[CategoryOut]

    @classmethod
    def of(cls, c: CategoryPublic) -> CategoryOut:
        return cls(
            id=c.id, name=c.name, parent_id=c.parent_id, position=c.position, children=[cls.of(x) for x in c.children]
        )


class PeopleIn(BaseModel):
    profile_ids: list[str] = Field(min_length=1, max_length=100_000)


class TaggedOut(BaseModel):
    changed: int = Field(description="people who got (or lost) the tag now")
    unchanged: int = Field(description="people who already had it (or did not have it)")


class RejectedRowOut(BaseModel):
    row: int
    value: str
    reason: str


class FileTaggedOut(BaseModel):
    total: int
    tagged: int = Field(description="rows whose person got (or lost) the tag now")
    already: int
    rejected_count: int
    rejected: list[RejectedRowOut] = Field(description=f"the first {MAX_REJECTED_SHOWN} rejected rows")


class ChangeOut(BaseModel):
    profile_id: str
    change: Literal["added", "removed", "changed"]
    value: str
    source: str
    actor_id: str | None
    run_id: str | None
    at: datetime


class CoverageOut(BaseModel):
    day: date
    people: int
    added: int
    removed: int
    of_everyone: int


class ComputedSourceOut(BaseModel):
    source: str
    name: str


class OptionOut(BaseModel):
    code: str
    name: str


class CatalogOut(BaseModel):
    traits: dict[str, list[str]] = Field(description="trait key → the types it can be compared as")
    events: list[str]
    rfm_groups: list[OptionOut]
    stages: list[OptionOut]
    computed_sources: list[ComputedSourceOut]
    groups: list[str] = Field(description="community groups people are in")
    segments: list[OptionOut] = Field(description="segments (for segment rules only)")


@router.get("", response_model=list[TagOut])
def list_tags(
    principal: Analyst,
    session: ScopedSessionDep,
    category_id: Annotated[str | None, Query(max_length=32)] = None,
    kind: Annotated[Literal["manual", "rule", "computed"] | None, Query()] = None,
) -> list[TagOut]:
    return [TagOut.of(t) for t in facade.list_tags(session, category_id, kind)]


@router.post("", response_model=TagOut, status_code=201)
def create_tag(body: TagIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep) -> TagOut:
    """A rule tag's rule is checked against the workspace's traits, events, tags, RFM groups and
    stages; anything unknown or malformed is refused with its place in the rule."""
    tag = facade.create_tag(session, body.draft(), rule_catalog(session, settings.data_dir), principal.actor_id)
    record_audit(session, principal, "tag.create", target_type="tag", target_id=tag.id, details={"name": tag.name})
    return TagOut.of(tag)


@router.get("/catalog", response_model=CatalogOut)
def catalog(principal: Analyst, session: ScopedSessionDep, settings: SettingsDep) -> CatalogOut:
    """What rules may name: for the rule editor's pickers."""
    known = rule_catalog(session, settings.data_dir)
    groups, stages = option_names(session)
    return CatalogOut(
        traits={k: sorted(v) for k, v in sorted(known.traits.items())},
        events=sorted(known.events),
        rfm_groups=[OptionOut(code=c, name=n) for c, n in groups.items()],
        stages=[OptionOut(code=c, name=n) for c, n in stages.items()],
        computed_sources=[ComputedSourceOut(source=k, name=v) for k, v in COMPUTED_NAMES.items()],
        groups=sorted(known.groups),
        segments=[OptionOut(code=c, name=n) for c, n in sorted(known.segments.items(), key=lambda x: x[1])],
    )


@router.get("/categories", response_model=list[CategoryOut])
def categories(principal: Analyst, session: ScopedSessionDep) -> list[CategoryOut]:
    return [CategoryOut.of(c) for c in facade.category_tree(session)]


@router.post("/categories", response_model=CategoryOut, status_code=201)
def create_category(body: CategoryIn, principal: Operator, session: ScopedSessionDep) -> CategoryOut:
    return CategoryOut.of(facade.create_category(session, body.name, body.parent_id, body.position))


@router.delete("/categories/{category_id}", status_code=204)
def delete_category(category_id: str, principal: Operator, session: ScopedSessionDep) -> None:
    facade.delete_category(session, category_id)


@router.get("/{tag_id}", response_model=TagOut)
def get_tag(tag_id: TagId, principal: Analyst, session: ScopedSessionDep) -> TagOut:
    return TagOut.of(facade.get_tag(session, tag_id))


@router.put("/{tag_id}", response_model=TagOut)
def update_tag(
    tag_id: TagId, body: TagIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep
) -> TagOut:
    tag = facade.update_tag(session, tag_id, body.draft(), rule_catalog(session, settings.data_dir))
    record_audit(session, principal, "tag.update", target_type="tag", target_id=tag.id, details={"name": tag.name})
    return TagOut.of(tag)


@router.delete("/{tag_id}", status_code=204)
def delete_tag(tag_id: TagId, principal: Operator, session: ScopedSessionDep) -> None:
    facade.delete_tag(session, tag_id)
    record_audit(session, principal, "tag.delete", target_type="tag", target_id=tag_id)


@router.post("/{tag_id}/people", response_model=TaggedOut)
def tag_people(tag_id: TagId, body: PeopleIn, principal: Operator, session: ScopedSessionDep) -> TaggedOut:
    """Put a manual tag on people."""
    done = facade.tag_people(session, tag_id, body.profile_ids, principal.actor_id)
    record_audit(session, principal, "tag.add", target_type="tag", target_id=tag_id, details={"people": done.changed})
    return TaggedOut(**done.__dict__)


@router.post("/{tag_id}/people/remove", response_model=TaggedOut)
def untag_people(tag_id: TagId, body: PeopleIn, principal: Operator, session: ScopedSessionDep) -> TaggedOut:
    """Take a manual tag off people."""
    done = facade.untag_people(session, tag_id, body.profile_ids, principal.actor_id)
    record_audit(
        session, principal, "tag.remove", target_type="tag", target_id=tag_id, details={"people": done.changed}
    )
    return TaggedOut(**done.__dict__)


@router.post("/{tag_id}/file", response_model=FileTaggedOut)
def tag_by_file(
    tag_id: TagId,
    principal: Operator,
    session: ScopedSessionDep,
    file: Annotated[UploadFile, File(description="CSV, XLSX, JSONL or Parquet: one identifier per row")],
    kind: Annotated[str, Form(description="profile_id, phone, email, member_no, user_id, unionid, …")] = "phone",
    column: Annotated[str | None, Form(description="the column of identifiers; the first when empty")] = None,
    remove: Annotated[bool, Form(description="take the tag off instead")] = False,
) -> FileTaggedOut:
    """Every row accounted for: tagged, already tagged, or rejected with its row and reason."""
    suffix = Path(file.filename or "upload.csv").suffix or ".csv"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"people{suffix}"
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out)
        done = facade.tag_by_file(session, tag_id, path, kind, column or None, principal.actor_id, remove)
    record_audit(
        session,
        principal,
        "tag.file",
        target_type="tag",
        target_id=tag_id,
        details={"file": file.filename, "tagged": done.tagged, "rejected": len(done.rejected), "remove": remove},
    )
    return FileTaggedOut(
        total=done.total,
        tagged=done.tagged,
        already=done.already,
        rejected_count=len(done.rejected),
        rejected=[RejectedRowOut(**r.__dict__) for r in done.rejected[:MAX_REJECTED_SHOWN]],
    )


@router.get("/{tag_id}/history", response_model=PagePublic[ChangeOut])
def history(
    tag_id: TagId,
    principal: Analyst,
    session: ScopedSessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> PagePublic[ChangeOut]:
    page = facade.tag_history(session, tag_id, cursor, limit)
    return PagePublic(items=[ChangeOut(**c.__dict__) for c in page.items], next_cursor=page.next_cursor)


@router.get("/{tag_id}/coverage", response_model=list[CoverageOut])
def coverage(
    tag_id: TagId, principal: Analyst, session: ScopedSessionDep, days: Annotated[int, Query(ge=1, le=730)] = 90
) -> list[CoverageOut]:
    return [CoverageOut(**p.__dict__) for p in facade.tag_coverage(session, tag_id, days)]
