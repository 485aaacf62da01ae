"""trait observations: trait history with provenance; current sources on profiles

Revision ID: 0006_trait_observations
Revises: 0005_identity_constraints
Create Date: 2026-11-22 11:55:14.705126
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.storage.base

revision: str = "0006_trait_observations"
down_revision: str | None = "0005_identity_constraints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trait_observations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("identity_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column(
            "value", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("observed_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name=op.f("fk_trait_observations_identity_id_identities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trait_observations")),
    )
    with op.batch_alter_table("trait_observations", schema=None) as batch_op:
        batch_op.create_index("ix_trait_observations_identity_id_key", ["identity_id", "key"], unique=False)
        batch_op.create_index(batch_op.f("ix_trait_observations_workspace_id"), ["workspace_id"], unique=False)

    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "trait_sources",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_column("trait_sources")

    with op.batch_alter_table("trait_observations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trait_observations_workspace_id"))
        batch_op.drop_index("ix_trait_observations_identity_id_key")

    op.drop_table("trait_observations")
