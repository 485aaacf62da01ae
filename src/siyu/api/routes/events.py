"""Browse received events (the console's live event view)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from siyu.api.deps import ScopedSessionDep, Viewer
from siyu.api.errors import COMMON_ERRORS
from siyu.api.schemas import EventPublic, PagePublic
from siyu.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from siyu.ingest.contracts import EventType
from siyu.ingest.facade import list_events

router = APIRouter(prefix="/api/v1/events", tags=["events"], responses=COMMON_ERRORS)


@router.get("", response_model=PagePublic[EventPublic])
def browse_events(
    principal: Viewer,
    session: ScopedSessionDep,
    type: EventType | None = None,
    name: Annotated[str | None, Query(max_length=200, description="track event or page/screen name")] = None,
    person: Annotated[str | None, Query(max_length=200, description="a userId or anonymousId")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> PagePublic[EventPublic]:
    """Newest first. Personal data in traits and properties is masked for analysts and viewers."""
    page = list_events(
        session,
        mask=not principal.role.sees_personal_data,
        type_=type.value if type else None,
        name=name,
        person=person,
        cursor=cursor,
        limit=limit,
    )
    return PagePublic(items=[EventPublic.model_validate(e) for e in page.items], next_cursor=page.next_cursor)
