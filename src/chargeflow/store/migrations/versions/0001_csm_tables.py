"""CSM tables: stations, connectors, id tokens, transactions, meter values, profiles

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "charging_profiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "id_tokens",
        sa.Column("id_token", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("expiry", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id_token"),
    )
    op.create_table(
        "stations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("ocpp_version", sa.String(length=16), nullable=True),
        sa.Column("vendor", sa.String(length=50), nullable=True),
        sa.Column("model", sa.String(length=50), nullable=True),
        sa.Column("serial_number", sa.String(length=50), nullable=True),
        sa.Column("firmware_version", sa.String(length=50), nullable=True),
        sa.Column("registered_at", sa.DateTime(), nullable=True),
        sa.Column("last_boot_at", sa.DateTime(), nullable=True),
        sa.Column("last_heartbeat_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "transaction_events",
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=36), nullable=False),
        sa.Column("seq_no", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=10), nullable=False),
        sa.Column("trigger_reason", sa.String(length=40), nullable=False),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("station_id", "external_id", "seq_no"),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=36), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("id_token", sa.String(length=255), nullable=True),
        sa.Column("meter_start_wh", sa.BigInteger(), nullable=True),
        sa.Column("meter_stop_wh", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.Column("stop_reason", sa.String(length=40), nullable=True),
        sa.Column("departure_time", sa.DateTime(), nullable=True),
        sa.Column("energy_need_wh", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("station_id", "external_id", name="uq_transactions_external"),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index("ix_transactions_active", ["station_id", "stopped_at"], unique=False)
        batch_op.create_index(
            "ix_transactions_start_key",
            ["station_id", "connector_id", "meter_start_wh", "started_at"],
            unique=False,
        )

    op.create_table(
        "connectors",
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.String(length=50), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("station_id", "evse_id", "connector_id"),
    )
    op.create_table(
        "meter_values",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("measurand", sa.String(length=50), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("location", sa.String(length=10), nullable=True),
        sa.Column("context", sa.String(length=30), nullable=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("signed", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["transaction_id"], ["transactions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("meter_values", schema=None) as batch_op:
        batch_op.create_index("ix_meter_values_transaction", ["transaction_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("meter_values", schema=None) as batch_op:
        batch_op.drop_index("ix_meter_values_transaction")

    op.drop_table("meter_values")
    op.drop_table("connectors")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_start_key")
        batch_op.drop_index("ix_transactions_active")

    op.drop_table("transactions")
    op.drop_table("transaction_events")
    op.drop_table("stations")
    op.drop_table("id_tokens")
    op.drop_table("charging_profiles")
