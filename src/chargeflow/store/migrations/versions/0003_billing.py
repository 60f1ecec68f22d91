"""Billing: the API's tariffs, each session's tariff, CDRs and the energy-source totals per session

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _transaction_id(primary_key: bool) -> sa.Column[int]:
    return sa.Column(
        "transaction_id",
        sa.Integer(),
        sa.ForeignKey("transactions.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "tariffs",
        sa.Column("position", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("entry", sa.JSON(), nullable=False),
    )
    op.create_table(
        "session_tariffs",
        _transaction_id(primary_key=True),
        sa.Column("tariff", sa.JSON(), nullable=True),
        sa.Column("selected_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "cdrs",
        sa.Column("id", sa.String(length=39), primary_key=True),
        _transaction_id(primary_key=False),
        sa.Column("evse_id", sa.String(length=64), nullable=False),
        sa.Column("id_token", sa.String(length=255), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("end_at", sa.DateTime(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("energy_wh", sa.BigInteger(), nullable=False),
        sa.Column("cost_excl_vat", sa.String(length=64), nullable=False),
        sa.Column("cost_incl_vat", sa.String(length=64), nullable=True),
        sa.Column("signature", sa.String(length=12), nullable=False),
        sa.Column("tariff_id", sa.String(length=36), nullable=True),
        sa.Column("cdr", sa.JSON(), nullable=False),
        sa.UniqueConstraint("transaction_id", name="uq_cdrs_transaction"),
    )
    op.create_index("ix_cdrs_start", "cdrs", ["start_at"])
    op.create_table(
        "session_sources",
        _transaction_id(primary_key=True),
        sa.Column("pv_wh", sa.BigInteger(), nullable=False),
        sa.Column("battery_wh", sa.BigInteger(), nullable=False),
        sa.Column("grid_wh", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("session_sources")
    op.drop_index("ix_cdrs_start", table_name="cdrs")
    op.drop_table("cdrs")
    op.drop_table("session_tariffs")
    op.drop_table("tariffs")
