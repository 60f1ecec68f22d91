"""The CSM's tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, stored as naive UTC so SQLite and PostgreSQL agree."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

stations = Table(
    "stations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("password_hash", String(200)),
    Column("ocpp_version", String(16)),
    Column("vendor", String(50)),
    Column("model", String(50)),
    Column("serial_number", String(50)),
    Column("firmware_version", String(50)),
    Column("registered_at", UtcDateTime),
    Column("last_boot_at", UtcDateTime),
    Column("last_heartbeat_at", UtcDateTime),
)

connectors = Table(
    "connectors",
    metadata,
    Column("station_id", String(64), ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True),
    Column("evse_id", Integer, primary_key=True),
    Column("connector_id", Integer, primary_key=True),
    Column("status", String(32), nullable=False),
    Column("error_code", String(50)),
    Column("updated_at", UtcDateTime, nullable=False),
)

id_tokens = Table(
    "id_tokens",
    metadata,
    Column("id_token", String(255), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("expiry", UtcDateTime),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("station_id", String(64), nullable=False),
    Column("external_id", String(36)),  # the station's id (2.0.1); None in 1.6, where ``id`` is sent
    Column("evse_id", Integer, nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("id_token", String(255)),
    Column("meter_start_wh", BigInteger),
    Column("meter_stop_wh", BigInteger),
    Column("started_at", UtcDateTime, nullable=False),
    Column("stopped_at", UtcDateTime),
    Column("stop_reason", String(40)),
    Column("departure_time", UtcDateTime),
    Column("energy_need_wh", BigInteger),
    # Not unique: a station whose transaction counter was reset names a new session with an old id;
    # the latest session with that id is the one its events continue.
    Index("ix_transactions_external", "station_id", "external_id"),
    Index("ix_transactions_start_key", "station_id", "connector_id", "meter_start_wh", "started_at"),
    Index("ix_transactions_active", "station_id", "stopped_at"),
)

transaction_events = Table(
    "transaction_events",
    metadata,
    Column("transaction_id", Integer, ForeignKey("transactions.id", ondelete="CASCADE"), primary_key=True),
    Column("seq_no", Integer, primary_key=True),
    Column("station_id", String(64), nullable=False),
    Column("external_id", String(36), nullable=False),
    Column("event_type", String(10), nullable=False),
    Column("trigger_reason", String(40), nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
    Column("offline", Boolean, nullable=False),
)

meter_values = Table(
    "meter_values",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("station_id", String(64), nullable=False),
    Column("evse_id", Integer, nullable=False),
    Column("transaction_id", Integer, ForeignKey("transactions.id", ondelete="CASCADE")),
    Column("timestamp", UtcDateTime, nullable=False),
    Column("measurand", String(50), nullable=False),
    Column("phase", String(8)),
    Column("unit", String(20)),
    Column("location", String(10)),
    Column("context", String(30)),
    Column("value", Text, nullable=False),  # verbatim, as the station sent it
    Column("signed", Text),  # signed data (1.6 SignedData, 2.0.1 signedMeterValue JSON), verbatim
    Index("ix_meter_values_transaction", "transaction_id"),
)

charging_profiles = Table(
    "charging_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("station_id", String(64), nullable=False),
    Column("evse_id", Integer, nullable=False),
    Column("profile", JSON, nullable=False),
    Column("status", String(40), nullable=False),
    Column("sent_at", UtcDateTime, nullable=False),
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("station_id", String(64), nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("id_token", String(255), nullable=False),
    Column("expiry", UtcDateTime, nullable=False),
    Column("status", String(12), nullable=False),
    Column("answer", String(20)),
)

# Billing (``store.billing``): the API's tariffs, each session's tariff, CDRs and energy-source totals.

tariffs = Table(
    "tariffs",
    metadata,
    Column("position", Integer, primary_key=True),  # the order selection tries them in
    Column("entry", JSON, nullable=False),  # {tariff: OCPI object, stations, token_groups}
)

session_tariffs = Table(
    "session_tariffs",
    metadata,
    Column("transaction_id", Integer, ForeignKey("transactions.id", ondelete="CASCADE"), primary_key=True),
    Column("tariff", JSON),  # the OCPI tariff chosen at the start; NULL: none applied (free)
    Column("selected_at", UtcDateTime, nullable=False),
)

cdrs = Table(
    "cdrs",
    metadata,
    Column("id", String(39), primary_key=True),  # OCPI CDR id (max 39)
    Column("transaction_id", Integer, ForeignKey("transactions.id", ondelete="CASCADE"), nullable=False),
    Column("evse_id", String(64), nullable=False),
    Column("id_token", String(255), nullable=False),
    Column("start_at", UtcDateTime, nullable=False),
    Column("end_at", UtcDateTime, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("energy_wh", BigInteger, nullable=False),
    Column("cost_excl_vat", String(64), nullable=False),  # exact decimal text: money is never a float
    Column("cost_incl_vat", String(64)),  # NULL: unknown (a component without VAT)
    Column("signature", String(12), nullable=False),
    Column("tariff_id", String(36)),
    Column("cdr", JSON, nullable=False),  # the OCPI CDR object as served
    UniqueConstraint("transaction_id", name="uq_cdrs_transaction"),
    Index("ix_cdrs_start", "start_at"),
)

session_sources = Table(
    "session_sources",
    metadata,
    Column("transaction_id", Integer, ForeignKey("transactions.id", ondelete="CASCADE"), primary_key=True),
    Column("pv_wh", BigInteger, nullable=False),
    Column("battery_wh", BigInteger, nullable=False),
    Column("grid_wh", BigInteger, nullable=False),
)

# The site's power flows, one row per control step (``store.flows``): the dashboard's history.

flow_samples = Table(
    "flow_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("grid_w", Float, nullable=False),  # positive: import
    Column("building_w", Float, nullable=False),
    Column("pv_w", Float, nullable=False),
    Column("ess_w", Float, nullable=False),  # positive: discharge
    Column("ev_w", Float, nullable=False),
    Column("granted_w", Float),  # NULL: no grant known at that step
    Column("limit_reason", String(100)),  # reason code of the limit in force (``web.live.step_reason``)
    Index("ix_flow_samples_at", "at"),
)
