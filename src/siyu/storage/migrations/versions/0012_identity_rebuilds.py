"""identity rebuilds: runs of the full identity graph rebuild

Revision ID: 0012_identity_rebuilds
Revises: 0011_lone_workspace_indexes
Create Date: 2026-11-22 13:50:26.779001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.storage.base

revision: str = "0012_identity_rebuilds"
down_revision: str | None = "0011_lone_workspace_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_rebuilds",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=True),
        sa.Column("requested_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("identifiers", sa.Integer(), nullable=False),
        sa.Column("links", sa.Integer(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("shared", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.Integer(), nullable=False),
        sa.Column("repaired", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_rebuilds")),
    )
    with op.batch_alter_table("identity_rebuilds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_rebuilds_workspace_id"), ["workspace_id"], unique=False)
        batch_op.create_index(
            "ix_identity_rebuilds_workspace_id_requested_at", ["workspace_id", "requested_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("identity_rebuilds", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_rebuilds_workspace_id_requested_at")
        batch_op.drop_index(batch_op.f("ix_identity_rebuilds_workspace_id"))

    op.drop_table("identity_rebuilds")
