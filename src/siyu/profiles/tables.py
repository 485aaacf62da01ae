"""Profile table. Traits carry the latest value per key; provenance and history come with ingest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, Timestamped, WorkspaceScoped


class Profile(WorkspaceScoped, Timestamped, Base):
    __tablename__ = "profiles"
    __table_args__ = (
        Index("ix_profiles_workspace_id_created_at", "workspace_id", "created_at"),
        # The batch engine's transfer reads the profiles whose traits changed since the last one.
        Index("ix_profiles_workspace_id_updated_at", "workspace_id", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("pf_"))
    display_name: Mapped[str | None] = mapped_column(String(200), default=None)
    # Current value of each trait, folded from trait observations by the precedence rules.
    traits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Where each current value came from: {key: {"source", "observed_at", "identity_id"}}.
    trait_sources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class TraitObservation(WorkspaceScoped, Base):
    """One trait value as a source reported it, for the identifier it came with. Append-only: the
    history of every trait, and what merges and splits refold current values from."""

    __tablename__ = "trait_observations"
    __table_args__ = (Index("ix_trait_observations_identity_id_key", "identity_id", "key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("tob_"))
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    value: Mapped[dict[str, Any]] = mapped_column()  # {"v": value}, so any JSON value fits
    source: Mapped[str] = mapped_column(String(100))
    observed_at: Mapped[datetime] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentRecord(WorkspaceScoped, Base):
    """One grant or withdrawal of consent for a channel address and purpose, with its proof.
    Append-only: the current state is the latest record by ``at``."""

    __tablename__ = "consent_records"
    # The latest record of an (address, channel, purpose) is the last entry of this index: no sort.
    __table_args__ = (Index("ix_consent_records_latest", "identity_id", "channel", "purpose", "at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("cns_"))
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(10))  # granted | withdrawn
    at: Mapped[datetime] = mapped_column()
    source: Mapped[str] = mapped_column(String(100))
    # What the person saw and did: consent text and its version, form, page, IP, reply text…
    proof: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProfileTag(WorkspaceScoped, Base):
    """A tag a person has: put on by hand or by import, or by the batch run for rule and
    computed tags (``value``: a computed tag's value for the person, e.g. their top category).
    Kept with the profile so that a merge carries the merged person's tags to the survivor."""

    __tablename__ = "profile_tags"
    workspace_id: Mapped[str] = mapped_column(String(32))  # led by composite indexes instead
    __table_args__ = (Index("ix_profile_tags_workspace_id_profile_id", "workspace_id", "profile_id"),)

    tag_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    profile_id: Mapped[str] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(20))  # manual | import | rule | computed
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    added_by: Mapped[str | None] = mapped_column(String(32), default=None)
