"""identity constraints: operators' manual merges (must) and splits (cannot)

Revision ID: 0005_identity_constraints
Revises: 0004_identities_by_value
Create Date: 2026-11-22 11:50:04.276747
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


import siyu.storage.base

revision: str = "0005_identity_constraints"
down_revision: str | None = "0004_identities_by_value"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_constraints",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("left_id", sa.String(length=32), nullable=False),
        sa.Column("right_id", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["left_id"], ["identities.id"], name=op.f("fk_identity_constraints_left_id_identities"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["right_id"],
            ["identities.id"],
            name=op.f("fk_identity_constraints_right_id_identities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_constraints")),
        sa.UniqueConstraint(
            "workspace_id",
            "kind",
            "left_id",
            "right_id",
            name=op.f("uq_identity_constraints_workspace_id_kind_left_id_right_id"),
        ),
    )
    with op.batch_alter_table("identity_constraints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_constraints_left_id"), ["left_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_identity_constraints_right_id"), ["right_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_identity_constraints_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("identity_constraints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_constraints_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_identity_constraints_right_id"))
        batch_op.drop_index(batch_op.f("ix_identity_constraints_left_id"))

    op.drop_table("identity_constraints")
