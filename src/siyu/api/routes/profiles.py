"""Profiles: find people by any identifier, and the profile 360 (identities, traits, events,
orders, merge history). Personal data is masked for analysts and viewers; unmasked views are
audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from siyu.accounts.audit import record_audit
from siyu.analytics.facade import profile_analytics
from siyu.api.deps import Operator, ScopedSessionDep, Viewer
from siyu.api.errors import COMMON_ERRORS
from siyu.api.schemas import (
    ConsentOut,
    EventPublic,
    IdentityDecisionOut,
    IdentityOut,
    MergeIn,
    MergeOut,
    OrderOut,
    PagePublic,
    Profile360Out,
    ProfileAnalyticsOut,
    ProfileChangeOut,
    ProfileHoldoutOut,
    ProfileSegmentOut,
    ProfileSummaryOut,
    ProfileTagOut,
    SplitIn,
)
from siyu.commerce.facade import orders_of_identities
from siyu.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from siyu.identity.facade import identities_of_profile, merge_history
from siyu.identity.operators import merge_profiles, split_profile
from siyu.identity.resolver import ProfileChange
from siyu.ingest.facade import events_of_identities
from siyu.profiles.consent import current_consents
from siyu.profiles.facade import apply_identity_outcome, get_profile, list_profiles
from siyu.profiles.masking import mask_email, mask_phone
from siyu.segments.facade import holdouts_of, profile_segments
from siyu.tags.facade import profile_tags

router = APIRouter(prefix="/api/v1/profiles", tags=["profiles"], responses=COMMON_ERRORS)
_MASK_BY_KIND = {"phone": mask_phone, "email": mask_email}


@router.get("", response_model=PagePublic[ProfileSummaryOut])
def search_profiles(
    principal: Viewer,
    session: ScopedSessionDep,
    q: Annotated[str | None, Query(max_length=200, description="a phone, email, user id, openid, nick…")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> PagePublic[ProfileSummaryOut]:
    """Newest first, or the people holding the identifier searched for."""
    page = list_profiles(session, mask=not principal.role.sees_personal_data, query=q, cursor=cursor, limit=limit)
    return PagePublic(items=[ProfileSummaryOut.model_validate(p) for p in page.items], next_cursor=page.next_cursor)


@router.get("/{profile_id}", response_model=Profile360Out)
def profile_360(profile_id: str, principal: Viewer, session: ScopedSessionDep) -> Profile360Out:
    """Everything known about one person."""
    mask = not principal.role.sees_personal_data
    profile = get_profile(session, profile_id, mask=mask)
    identities = identities_of_profile(session, profile_id)
    ids = [i.id for i in identities]
    shown = [
        IdentityOut.model_validate(i).model_copy(
            update={"value": _MASK_BY_KIND[i.kind](i.value)} if mask and i.kind in _MASK_BY_KIND else {}
        )
        for i in identities
    ]
    if not mask:
        record_audit(session, principal, "profile.view", target_type="profile", target_id=profile_id)
    return Profile360Out(
        profile=ProfileSummaryOut.model_validate(profile),
        analytics=ProfileAnalyticsOut.model_validate(profile_analytics(session, profile_id), from_attributes=True),
        tags=[ProfileTagOut.model_validate(t) for t in profile_tags(session, profile_id)],
        segments=[ProfileSegmentOut.model_validate(g) for g in profile_segments(session, profile_id)],
        holdouts=[ProfileHoldoutOut.model_validate(h) for h in holdouts_of(session, profile_id)],
        identities=shown,
        events=[EventPublic.model_validate(e) for e in events_of_identities(session, ids, mask=mask)],
        orders=[OrderOut.model_validate(o) for o in orders_of_identities(session, ids)],
        merges=[MergeOut.model_validate(m) for m in merge_history(session, profile_id)],
        consents=[
            ConsentOut.model_validate(c).model_copy(update={"proof": {}} if mask else {})
            for c in current_consents(session, ids)
        ],
        masked=mask,
    )


def _decision(new_ids: list[str], changes: list[ProfileChange]) -> IdentityDecisionOut:
    return IdentityDecisionOut(
        new_profile_ids=new_ids,
        changes=[
            ProfileChangeOut(
                action=c.action, survivor_id=c.survivor_id, other_id=c.other_id, identity_id=c.identity_id, rule=c.rule
            )
            for c in changes
        ],
    )


@router.post("/{profile_id}/split", response_model=IdentityDecisionOut)
def split(profile_id: str, body: SplitIn, principal: Operator, session: ScopedSessionDep) -> IdentityDecisionOut:
    """These identifiers are not this person: they move to a profile of their own (their events and
    orders follow them). Remembered: later data will not join them again."""
    new_ids, changes = split_profile(session, profile_id, body.identity_ids, actor_id=principal.actor_id)
    apply_identity_outcome(session, new_ids, changes)
    record_audit(
        session,
        principal,
        "profile.split",
        target_type="profile",
        target_id=profile_id,
        details={"identity_ids": body.identity_ids, "new_profile_ids": new_ids},
    )
    return _decision(new_ids, changes)


@router.post("/{profile_id}/merge", response_model=IdentityDecisionOut)
def merge(profile_id: str, body: MergeIn, principal: Operator, session: ScopedSessionDep) -> IdentityDecisionOut:
    """These two profiles are one person. Refused with 409 when the identity rules forbid it (for
    example, two different WeChat unionids)."""
    new_ids, changes = merge_profiles(session, profile_id, body.other_profile_id, actor_id=principal.actor_id)
    apply_identity_outcome(session, new_ids, changes)
    record_audit(
        session,
        principal,
        "profile.merge",
        target_type="profile",
        target_id=profile_id,
        details={"other_profile_id": body.other_profile_id},
    )
    return _decision(new_ids, changes)
