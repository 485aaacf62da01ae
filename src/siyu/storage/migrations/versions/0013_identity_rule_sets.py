"""identity rule sets: a workspace's own identity rules

Revision ID: 0013_identity_rule_sets
Revises: 0012_identity_rebuilds
Create Date: 2026-11-22 14:15:50.632902
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.storage.base

revision: str = "0013_identity_rule_sets"
down_revision: str | None = "0012_identity_rebuilds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_rule_sets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column(
            "rules", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("updated_by", sa.String(length=32), nullable=True),
        sa.Column("updated_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_rule_sets")),
        sa.UniqueConstraint("workspace_id", name=op.f("uq_identity_rule_sets_workspace_id")),
    )
    with op.batch_alter_table("identity_rule_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_rule_sets_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("identity_rule_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_rule_sets_workspace_id"))

    op.drop_table("identity_rule_sets")
