"""The site's power flows per control step, for the dashboard's history

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_samples",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("grid_w", sa.Float(), nullable=False),
        sa.Column("building_w", sa.Float(), nullable=False),
        sa.Column("pv_w", sa.Float(), nullable=False),
        sa.Column("ess_w", sa.Float(), nullable=False),
        sa.Column("ev_w", sa.Float(), nullable=False),
        sa.Column("granted_w", sa.Float(), nullable=True),
        sa.Column("limit_reason", sa.String(length=100), nullable=True),
    )
    op.create_index("ix_flow_samples_at", "flow_samples", ["at"])


def downgrade() -> None:
    op.drop_index("ix_flow_samples_at", table_name="flow_samples")
    op.drop_table("flow_samples")
