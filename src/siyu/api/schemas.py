"""Request and response models of the HTTP API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from siyu.accounts.contracts import KeyScope, Role
from siyu.jobs.contracts import JobStatus

T = TypeVar("T")


class PagePublic(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="pass as `cursor` to get the next page; null at the end")


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WorkspacePublic(Public):
    id: str
    name: str
    slug: str
    timezone: str
    created_at: datetime


class WorkspaceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=2, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]+$")
    timezone: str = Field(default="Asia/Shanghai", max_length=64)


class MembershipOut(Public):
    workspace: WorkspacePublic
    role: Role


class UserPublic(Public):
    id: str
    email: str
    display_name: str
    created_at: datetime


class LoginIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    user: UserPublic
    csrf_token: str
    workspace: WorkspacePublic | None
    role: Role | None
    workspaces: list[MembershipOut]


class SwitchWorkspaceIn(BaseModel):
    workspace_id: str = Field(min_length=1, max_length=32)


class MemberOut(BaseModel):
    user: UserPublic
    role: Role


class MemberSet(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    role: Role


class ApiKeyPublic(Public):
    id: str
    name: str
    scope: KeyScope
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scope: KeyScope


class ApiKeyCreatedOut(BaseModel):
    key: ApiKeyPublic
    token: str = Field(description="shown once; store it now")


class AuditEventPublic(Public):
    id: str
    at: datetime
    actor_type: str
    actor_id: str | None
    action: str
    target_type: str | None
    target_id: str | None
    details: dict[str, Any]
    ip: str | None


class JobPublic(Public):
    id: str
    task: str
    queue: str
    status: JobStatus
    run_at: datetime
    attempts: int
    max_attempts: int
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class JobCounts(BaseModel):
    counts: dict[str, int]


class DayPointOut(Public):
    day: date
    orders: int
    paid_fen: int
    events: int


class DashboardOut(Public):
    profiles: int
    orders: int
    events: int
    timezone: str
    trend: list[DayPointOut]


class HealthOut(BaseModel):
    status: str
    checks: dict[str, str] = {}


class EventPublic(Public):
    id: str
    message_id: str
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    identity_id: str | None
    profile_id: str | None
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    timestamp: datetime
    received_at: datetime


class ProfileSummaryOut(Public):
    id: str
    display_name: str | None
    traits: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime


class IdentityOut(Public):
    id: str
    kind: str
    scope: str
    value: str
    weak: bool
    shared: bool
    first_seen_at: datetime


class OrderOut(Public):
    id: str
    platform: str
    store: str
    order_no: str
    status: str
    total_fen: int
    paid_fen: int
    receiver_name_masked: str | None
    receiver_phone_masked: str | None
    ordered_at: datetime
    paid_at: datetime | None


class MergeOut(Public):
    id: str
    action: str
    survivor_id: str
    other_id: str
    identity_id: str | None
    rule: str
    at: datetime


class ConsentOut(Public):
    identity_id: str
    channel: str
    purpose: str
    status: str
    at: datetime
    source: str
    proof: dict[str, Any]


class ProfileRfmOut(BaseModel):
    last_purchase_at: datetime
    recency_days: int
    frequency: int
    monetary_fen: int
    r_score: int
    f_score: int
    m_score: int
    rfm_group: str
    rfm_group_name: str


class ProfileClvOut(BaseModel):
    p_alive: float = Field(description="probability the person still buys (BG/NBD)")
    expected_purchases: float = Field(description="purchases expected over the next horizon_days")
    expected_value_fen: int = Field(description="their expected value (Gamma-Gamma spend per purchase)")
    horizon_days: int


class ProfilePreferencesOut(BaseModel):
    top_category: str | None
    top_brand: str | None
    price_band: str | None = Field(description="median unit price band, in yuan")
    top_platform: str | None
    top_hour: int | None = Field(description="the local hour of day they order most")
    median_interval_days: float | None
    next_purchase_day: date | None


class ProfileAnalyticsOut(BaseModel):
    stage: str | None
    stage_name: str | None
    stage_since: datetime | None
    previous_stage_name: str | None
    rfm: ProfileRfmOut | None
    clv: ProfileClvOut | None
    preferences: ProfilePreferencesOut | None
    lead_score: float | None
    lead_grade: str | None


class ProfileTagOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tag_id: str
    name: str
    kind: str
    value: str = Field(description="a computed tag's value for the person; empty for others")
    source: str
    added_at: datetime


class ProfileSegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    segment_id: str
    name: str
    kind: str
    entered_at: datetime


class ProfileHoldoutOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: str


class Profile360Out(BaseModel):
    profile: ProfileSummaryOut
    analytics: ProfileAnalyticsOut = Field(description="lifecycle stage and RFM as the last batch run left them")
    tags: list[ProfileTagOut]
    segments: list[ProfileSegmentOut]
    holdouts: list[ProfileHoldoutOut] = Field(description="the holdouts that set the person aside from campaigns")
    identities: list[IdentityOut]
    consents: list[ConsentOut]
    events: list[EventPublic]
    orders: list[OrderOut]
    merges: list[MergeOut]
    masked: bool


class SplitIn(BaseModel):
    identity_ids: list[str] = Field(min_length=1, max_length=500, description="identifiers to split off")


class MergeIn(BaseModel):
    other_profile_id: str = Field(min_length=1, max_length=32)


class ProfileChangeOut(BaseModel):
    action: str
    survivor_id: str
    other_id: str
    identity_id: str | None
    rule: str


class IdentityDecisionOut(BaseModel):
    new_profile_ids: list[str]
    changes: list[ProfileChangeOut]
