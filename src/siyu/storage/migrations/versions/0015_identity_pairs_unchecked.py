"""identity_pairs: identity_id and other_id are no longer foreign keys, and the index by
(identity_id, other_group) goes (lookups use the unique index by workspace and identity)

Revision ID: 0015_identity_pairs_unchecked
Revises: 0014_events_identity_unchecked
Create Date: 2026-11-23 05:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015_identity_pairs_unchecked"
down_revision: str | None = "0014_events_identity_unchecked"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identity_pairs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_identity_pairs_identity_id_identities"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_identity_pairs_other_id_identities"), type_="foreignkey")
        batch_op.drop_index("ix_identity_pairs_identity_id_other_group")


def downgrade() -> None:
    with op.batch_alter_table("identity_pairs", schema=None) as batch_op:
        batch_op.create_index("ix_identity_pairs_identity_id_other_group", ["identity_id", "other_group"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_identity_pairs_other_id_identities"), "identities", ["other_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_identity_pairs_identity_id_identities"),
            "identities",
            ["identity_id"],
            ["id"],
            ondelete="CASCADE",
        )
