"""events: identity_id is no longer a foreign key (the check locked an identity row per event)

Revision ID: 0014_events_identity_unchecked
Revises: 0013_identity_rule_sets
Create Date: 2026-11-23 01:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014_events_identity_unchecked"
down_revision: str | None = "0013_identity_rule_sets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_events_identity_id_identities"), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_events_identity_id_identities"), "identities", ["identity_id"], ["id"], ondelete="SET NULL"
        )
