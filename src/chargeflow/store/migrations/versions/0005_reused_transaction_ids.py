"""A station's transaction id may name several sessions: events belong to a session, not to the id

A 2.0.1 station whose transaction counter was reset names a new session with an id it used before
(issue #13, item 13). The id stays indexed but is no longer unique, and each event row points at its
session, so the same seqNo may start again in the new one.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COPIED = "station_id, external_id, seq_no, event_type, trigger_reason, timestamp, offline"


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.drop_constraint("uq_transactions_external", type_="unique")
    op.create_index("ix_transactions_external", "transactions", ["station_id", "external_id"])
    op.create_table(
        "transaction_events_by_session",
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("seq_no", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=10), nullable=False),
        sa.Column("trigger_reason", sa.String(length=40), nullable=False),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["transaction_id"], ["transactions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("transaction_id", "seq_no"),
    )
    # Until now an id named one session, so the join finds exactly the session of each event.
    op.execute(
        f"INSERT INTO transaction_events_by_session (transaction_id, {_COPIED}) "
        f"SELECT t.id, {', '.join('e.' + c.strip() for c in _COPIED.split(','))} "
        "FROM transaction_events e JOIN transactions t "
        "ON t.station_id = e.station_id AND t.external_id = e.external_id"
    )
    op.drop_table("transaction_events")
    op.rename_table("transaction_events_by_session", "transaction_events")


def downgrade() -> None:
    op.create_table(
        "transaction_events_by_id",
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=36), nullable=False),
        sa.Column("seq_no", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=10), nullable=False),
        sa.Column("trigger_reason", sa.String(length=40), nullable=False),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("station_id", "external_id", "seq_no"),
    )
    # Only the latest session of each id keeps its events: the old key cannot hold more.
    op.execute(
        f"INSERT INTO transaction_events_by_id ({_COPIED}) SELECT {_COPIED} FROM transaction_events e "
        "WHERE e.transaction_id = (SELECT max(t.id) FROM transactions t "
        "WHERE t.station_id = e.station_id AND t.external_id = e.external_id)"
    )
    op.drop_table("transaction_events")
    op.rename_table("transaction_events_by_id", "transaction_events")
    op.drop_index("ix_transactions_external", table_name="transactions")
    with op.batch_alter_table("transactions") as batch:
        batch.create_unique_constraint("uq_transactions_external", ["station_id", "external_id"])
