"""identity graph: pairs seen together, conflicts, merge audit; events and orders point at identities

Revision ID: 0003_identity_graph
Revises: 0002_event_segment_fields
Create Date: 2026-11-22 11:13:55.283383
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.storage.base

revision: str = "0003_identity_graph"
down_revision: str | None = "0002_event_segment_fields"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_merges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("survivor_id", sa.String(length=32), nullable=False),
        sa.Column("other_id", sa.String(length=32), nullable=False),
        sa.Column("identity_id", sa.String(length=32), nullable=True),
        sa.Column("rule", sa.String(length=80), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_merges")),
    )
    with op.batch_alter_table("identity_merges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_merges_workspace_id"), ["workspace_id"], unique=False)
        batch_op.create_index("ix_identity_merges_workspace_id_survivor", ["workspace_id", "survivor_id"], unique=False)

    op.create_table(
        "identity_conflicts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("left_id", sa.String(length=32), nullable=False),
        sa.Column("right_id", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=80), nullable=False),
        sa.Column("first_seen_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["left_id"], ["identities.id"], name=op.f("fk_identity_conflicts_left_id_identities"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["right_id"], ["identities.id"], name=op.f("fk_identity_conflicts_right_id_identities"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_conflicts")),
        sa.UniqueConstraint(
            "workspace_id", "left_id", "right_id", name=op.f("uq_identity_conflicts_workspace_id_left_id_right_id")
        ),
    )
    with op.batch_alter_table("identity_conflicts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_conflicts_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "identity_pairs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("identity_id", sa.String(length=32), nullable=False),
        sa.Column("other_id", sa.String(length=32), nullable=False),
        sa.Column("other_group", sa.String(length=110), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name=op.f("fk_identity_pairs_identity_id_identities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["other_id"], ["identities.id"], name=op.f("fk_identity_pairs_other_id_identities"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_pairs")),
        sa.UniqueConstraint(
            "workspace_id", "identity_id", "other_id", name=op.f("uq_identity_pairs_workspace_id_identity_id_other_id")
        ),
    )
    with op.batch_alter_table("identity_pairs", schema=None) as batch_op:
        batch_op.create_index("ix_identity_pairs_identity_id_other_group", ["identity_id", "other_group"], unique=False)
        batch_op.create_index(batch_op.f("ix_identity_pairs_workspace_id"), ["workspace_id"], unique=False)

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identity_id", sa.String(length=32), nullable=True))
        batch_op.drop_index(batch_op.f("ix_events_profile_id"))
        batch_op.create_index(batch_op.f("ix_events_identity_id"), ["identity_id"], unique=False)
        batch_op.drop_constraint(batch_op.f("fk_events_profile_id_profiles"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_events_identity_id_identities"), "identities", ["identity_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.drop_column("profile_id")

    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.alter_column("profile_id", existing_type=sa.VARCHAR(length=32), nullable=True)
        batch_op.drop_constraint(batch_op.f("fk_identities_profile_id_profiles"), type_="foreignkey")

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("buyer_identity_id", sa.String(length=32), nullable=True))
        batch_op.drop_index(batch_op.f("ix_orders_profile_id"))
        batch_op.create_index(batch_op.f("ix_orders_buyer_identity_id"), ["buyer_identity_id"], unique=False)
        batch_op.drop_constraint(batch_op.f("fk_orders_profile_id_profiles"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_orders_buyer_identity_id_identities"),
            "identities",
            ["buyer_identity_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.drop_column("profile_id")


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile_id", sa.VARCHAR(length=32), nullable=True))
        batch_op.drop_constraint(batch_op.f("fk_orders_buyer_identity_id_identities"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_orders_profile_id_profiles"), "profiles", ["profile_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.drop_index(batch_op.f("ix_orders_buyer_identity_id"))
        batch_op.create_index(batch_op.f("ix_orders_profile_id"), ["profile_id"], unique=False)
        batch_op.drop_column("buyer_identity_id")

    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_identities_profile_id_profiles"), "profiles", ["profile_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.alter_column("profile_id", existing_type=sa.VARCHAR(length=32), nullable=False)
        batch_op.drop_column("shared")

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile_id", sa.VARCHAR(length=32), nullable=True))
        batch_op.drop_constraint(batch_op.f("fk_events_identity_id_identities"), type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_events_profile_id_profiles"), "profiles", ["profile_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.drop_index(batch_op.f("ix_events_identity_id"))
        batch_op.create_index(batch_op.f("ix_events_profile_id"), ["profile_id"], unique=False)
        batch_op.drop_column("identity_id")

    with op.batch_alter_table("identity_pairs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_pairs_workspace_id"))
        batch_op.drop_index("ix_identity_pairs_identity_id_other_group")

    op.drop_table("identity_pairs")
    with op.batch_alter_table("identity_conflicts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_conflicts_workspace_id"))

    op.drop_table("identity_conflicts")
    with op.batch_alter_table("identity_merges", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_merges_workspace_id_survivor")
        batch_op.drop_index(batch_op.f("ix_identity_merges_workspace_id"))

    op.drop_table("identity_merges")
