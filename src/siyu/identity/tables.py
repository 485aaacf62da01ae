"""Identity graph tables.

``identities`` holds each identifier value once per workspace and the profile (person) it
belongs to now. ``identity_pairs`` record which merging values were seen together, in both
directions: they are the links of the graph and the counts of the shared-value guard. Events and orders point at an
identity, not a profile, so merges and splits never rewrite them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, WorkspaceScoped


class Identity(WorkspaceScoped, Base):
    __tablename__ = "identities"
    # Lookups here lead with workspace_id in composite indexes; a lone workspace_id index only
    # tempts PostgreSQL into scanning a whole workspace while its statistics lag a fast load.
    workspace_id: Mapped[str] = mapped_column(String(32))
    __table_args__ = (
        UniqueConstraint("workspace_id", "kind", "scope", "value"),
        # Lookups go by value first: it is nearly unique, while kind and scope repeat.
        Index("ix_identities_workspace_id_value", "workspace_id", "value"),
        Index("ix_identities_workspace_id_changed_at", "workspace_id", "changed_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("idn_"))
    # The person this identifier belongs to; none for weak and shared identifiers.
    profile_id: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    kind: Mapped[str] = mapped_column(String(40))
    # The namespace of the value: a WeChat app id for openids, a platform for buyer ids, "" if none.
    scope: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[str] = mapped_column(String(200))
    # Weak identifiers (masked phones) describe a person but never merge people by themselves.
    weak: Mapped[bool] = mapped_column(Boolean, default=False)
    # Seen with too many others (a shop's phone): links nobody.
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the row was last written (inserted, moved to another profile, marked shared), set by
    # the database (see migration 0016): what the batch engine's incremental transfer reads by.
    changed_at: Mapped[datetime] = mapped_column(server_default=text("CURRENT_TIMESTAMP"))


class IdentityPair(WorkspaceScoped, Base):
    """``identity`` was seen together with ``other`` (whose kind and scope are ``other_group``)."""

    __tablename__ = "identity_pairs"
    # Lookups here lead with workspace_id in composite indexes; a lone workspace_id index only
    # tempts PostgreSQL into scanning a whole workspace while its statistics lag a fast load.
    workspace_id: Mapped[str] = mapped_column(String(32))
    # Read by (workspace, identity): the unique index serves it.
    __table_args__ = (UniqueConstraint("workspace_id", "identity_id", "other_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("ipr_"))
    # Not foreign keys: identities are never deleted, and pairs are written by resolution alone,
    # under the workspace's resolution turn, naming identities it has just read or stored. On
    # PostgreSQL the two checks would lock two identity rows per pair, inside that turn.
    identity_id: Mapped[str] = mapped_column(String(32))
    other_id: Mapped[str] = mapped_column(String(32))
    other_group: Mapped[str] = mapped_column(String(110))


class IdentityConflict(WorkspaceScoped, Base):
    """A link the rules refused (a cap or an operator's split), kept for review."""

    __tablename__ = "identity_conflicts"
    __table_args__ = (UniqueConstraint("workspace_id", "left_id", "right_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("icf_"))
    left_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    right_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(80))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    times: Mapped[int] = mapped_column(Integer, default=1)


class IdentityMerge(WorkspaceScoped, Base):
    """Audit of profile merges and splits: which identifier joined (or left) which profiles."""

    __tablename__ = "identity_merges"
    __table_args__ = (Index("ix_identity_merges_workspace_id_survivor", "workspace_id", "survivor_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("img_"))
    action: Mapped[str] = mapped_column(String(16))  # merge | split
    survivor_id: Mapped[str] = mapped_column(String(32))
    other_id: Mapped[str] = mapped_column(String(32))
    identity_id: Mapped[str | None] = mapped_column(String(32), default=None)
    rule: Mapped[str] = mapped_column(String(80))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class IdentityConstraint(WorkspaceScoped, Base):
    """An operator's decision: two identifiers are the same person (must) or never (cannot)."""

    __tablename__ = "identity_constraints"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "left_id", "right_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("ics_"))
    kind: Mapped[str] = mapped_column(String(8))  # must | cannot
    left_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), index=True)
    right_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdentityRebuild(WorkspaceScoped, Base):
    """One full rebuild of a workspace's identity graph: what it found and what it repaired."""

    __tablename__ = "identity_rebuilds"
    __table_args__ = (Index("ix_identity_rebuilds_workspace_id_requested_at", "workspace_id", "requested_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("irb_"))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done | failed
    requested_by: Mapped[str | None] = mapped_column(String(32), default=None)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    identifiers: Mapped[int] = mapped_column(Integer, default=0)
    links: Mapped[int] = mapped_column(Integer, default=0)
    people: Mapped[int] = mapped_column(Integer, default=0)
    shared: Mapped[int] = mapped_column(Integer, default=0)
    conflicts: Mapped[int] = mapped_column(Integer, default=0)
    # Identifiers whose stored person differed from the rebuilt partition, and were re-solved.
    repaired: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(2000), default=None)


class IdentityRuleSet(WorkspaceScoped, Base):
    """A workspace's identity rules, when its operators changed them from the defaults."""

    __tablename__ = "identity_rule_sets"
    __table_args__ = (UniqueConstraint("workspace_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("irs_"))
    # {kind: {merges, priority, max_per_profile, shared_limit}}
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_by: Mapped[str | None] = mapped_column(String(32), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
