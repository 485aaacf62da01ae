"""analytics settings, runs, RFM, lifecycle, CLV, preference and lead score results

Revision ID: 0017_analytics_runs_analytics_runs
Revises: 0016_change_marks
Create Date: 2026-11-23 18:43:42.873321
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.storage.base

revision: str = "0017_analytics_runs"
down_revision: str | None = "0016_change_marks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_runs",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=True),
        sa.Column("requested_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("as_of", siyu.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "steps", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_runs")),
    )
    with op.batch_alter_table("analytics_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_analytics_runs_workspace_id_requested_at", ["workspace_id", "requested_at"], unique=False
        )

    op.create_table(
        "analytics_settings",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("rfm", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column(
            "lifecycle", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "options", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "leads", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("schedule", sa.String(length=120), nullable=True),
        sa.Column("updated_by", sa.String(length=32), nullable=True),
        sa.Column("updated_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_settings")),
        sa.UniqueConstraint("workspace_id", name=op.f("uq_analytics_settings_workspace_id")),
    )
    op.create_table(
        "profile_rfm",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("last_purchase_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary_fen", sa.BigInteger(), nullable=False),
        sa.Column("r_score", sa.Integer(), nullable=False),
        sa.Column("f_score", sa.Integer(), nullable=False),
        sa.Column("m_score", sa.Integer(), nullable=False),
        sa.Column("rfm_group", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_profile_rfm")),
    )
    with op.batch_alter_table("profile_rfm", schema=None) as batch_op:
        batch_op.create_index("ix_profile_rfm_workspace_id_rfm_group", ["workspace_id", "rfm_group"], unique=False)
    op.create_table(
        "profile_lifecycle",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("previous_stage", sa.String(length=32), nullable=True),
        sa.Column("since", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_profile_lifecycle")),
    )
    with op.batch_alter_table("profile_lifecycle", schema=None) as batch_op:
        batch_op.create_index("ix_profile_lifecycle_workspace_id_stage", ["workspace_id", "stage"], unique=False)
    op.create_table(
        "profile_clv",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("p_alive", sa.Float(), nullable=False),
        sa.Column("expected_purchases", sa.Float(), nullable=False),
        sa.Column("expected_value_fen", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_profile_clv")),
    )
    with op.batch_alter_table("profile_clv", schema=None) as batch_op:
        batch_op.create_index(
            "ix_profile_clv_workspace_id_expected_value_fen", ["workspace_id", "expected_value_fen"], unique=False
        )
    op.create_table(
        "profile_preferences",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("top_category", sa.String(length=100), nullable=True),
        sa.Column("top_brand", sa.String(length=100), nullable=True),
        sa.Column("price_band", sa.String(length=20), nullable=True),
        sa.Column("top_platform", sa.String(length=20), nullable=True),
        sa.Column("top_hour", sa.Integer(), nullable=True),
        sa.Column("median_interval_days", sa.Float(), nullable=True),
        sa.Column("next_purchase_day", sa.Date(), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_profile_preferences")),
    )
    with op.batch_alter_table("profile_preferences", schema=None) as batch_op:
        batch_op.create_index(
            "ix_profile_preferences_workspace_id_top_category", ["workspace_id", "top_category"], unique=False
        )
    op.create_table(
        "profile_lead_scores",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("grade", sa.String(length=20), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_profile_lead_scores")),
    )
    with op.batch_alter_table("profile_lead_scores", schema=None) as batch_op:
        batch_op.create_index("ix_profile_lead_scores_workspace_id_grade", ["workspace_id", "grade"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("profile_lead_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_profile_lead_scores_workspace_id_grade")
    op.drop_table("profile_lead_scores")
    with op.batch_alter_table("profile_preferences", schema=None) as batch_op:
        batch_op.drop_index("ix_profile_preferences_workspace_id_top_category")
    op.drop_table("profile_preferences")
    with op.batch_alter_table("profile_clv", schema=None) as batch_op:
        batch_op.drop_index("ix_profile_clv_workspace_id_expected_value_fen")
    op.drop_table("profile_clv")
    with op.batch_alter_table("profile_lifecycle", schema=None) as batch_op:
        batch_op.drop_index("ix_profile_lifecycle_workspace_id_stage")
    op.drop_table("profile_lifecycle")
    with op.batch_alter_table("profile_rfm", schema=None) as batch_op:
        batch_op.drop_index("ix_profile_rfm_workspace_id_rfm_group")

    op.drop_table("profile_rfm")
    op.drop_table("analytics_settings")
    with op.batch_alter_table("analytics_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_runs_workspace_id_requested_at")

    op.drop_table("analytics_runs")
