"""The CSM's facts about stations, id tokens, transactions and meter values (pure data, no I/O).

Protocol adapters build these from OCPP payloads of any version; the rules in ``auth`` and
``transactions`` and the service in ``service`` work only with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class AuthStatus(StrEnum):
    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"
    UNKNOWN = "Unknown"


class TxEventType(StrEnum):
    STARTED = "Started"
    UPDATED = "Updated"
    ENDED = "Ended"


@dataclass(frozen=True, slots=True)
class IdTokenRecord:
    id_token: str
    status: AuthStatus
    expiry: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuthDecision:
    status: AuthStatus
    expiry: datetime | None = None

    @property
    def accepted(self) -> bool:
        return self.status is AuthStatus.ACCEPTED


@dataclass(frozen=True, slots=True)
class StationRecord:
    station_id: str
    password_hash: str | None = None
    ocpp_version: str | None = None
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    firmware_version: str | None = None
    registered_at: datetime | None = None
    last_boot_at: datetime | None = None
    last_heartbeat_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BootInfo:
    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None


@dataclass(frozen=True, slots=True)
class BootDecision:
    accepted: bool
    current_time: datetime
    interval_s: int


@dataclass(frozen=True, slots=True)
class ConnectorStatus:
    evse_id: int
    connector_id: int
    status: str
    timestamp: datetime | None = None  # None: the station sent none, the service stamps it
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One sampled value as the station sent it; ``value`` is kept verbatim (signed data included)."""

    timestamp: datetime
    value: str
    measurand: str = "Energy.Active.Import.Register"
    phase: str | None = None
    unit: str | None = None
    location: str | None = None
    context: str | None = None
    signed: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """A charging session. ``meter_stop_wh`` is the last register reading while the session runs."""

    id: int
    station_id: str
    evse_id: int
    connector_id: int
    started_at: datetime
    meter_start_wh: int | None
    external_id: str | None = None
    id_token: str | None = None
    meter_stop_wh: int | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    departure_time: datetime | None = None
    energy_need_wh: int | None = None

    @property
    def active(self) -> bool:
        return self.stopped_at is None

    @property
    def energy_wh(self) -> int | None:
        """EnCh: the energy charged, meterStop − meterStart."""
        if self.meter_start_wh is None or self.meter_stop_wh is None:
            return None
        return self.meter_stop_wh - self.meter_start_wh


@dataclass(frozen=True, slots=True)
class StartRequest:
    """OCPP 1.6 StartTransaction."""

    station_id: str
    connector_id: int
    id_token: str
    meter_start_wh: int
    timestamp: datetime
    reservation_id: int | None = None


@dataclass(frozen=True, slots=True)
class StopRequest:
    """OCPP 1.6 StopTransaction."""

    station_id: str
    transaction_id: int
    meter_stop_wh: int
    timestamp: datetime
    reason: str | None = None
    id_token: str | None = None
    samples: tuple[MeterSample, ...] = ()


@dataclass(frozen=True, slots=True)
class TransactionEvent:
    """OCPP 2.0.1 / 2.1 TransactionEvent."""

    station_id: str
    external_id: str
    seq_no: int
    event_type: TxEventType
    timestamp: datetime
    trigger_reason: str
    evse_id: int = 0
    connector_id: int = 0
    id_token: str | None = None
    stopped_reason: str | None = None
    offline: bool = False
    samples: tuple[MeterSample, ...] = ()


@dataclass(frozen=True, slots=True)
class ChargingNeeds:
    """ChPr from the EV (ISO 15118 via NotifyEVChargingNeeds): departure time and energy need."""

    station_id: str
    evse_id: int
    departure_time: datetime | None = None
    energy_need_wh: int | None = None


@dataclass(frozen=True, slots=True)
class EventOutcome:
    transaction: TransactionRecord
    duplicate: bool
    samples: tuple[MeterSample, ...] = field(default=())


class ReservationStatus(StrEnum):
    REQUESTED = "Requested"  # stored, not yet answered by the station
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"  # the station said Faulted, Occupied, Rejected or Unavailable
    USED = "Used"  # a transaction started on it
    CANCELLED = "Cancelled"
    EXPIRED = "Expired"
    REMOVED = "Removed"


@dataclass(frozen=True, slots=True)
class ReservationRecord:
    id: int
    station_id: str
    connector_id: int
    id_token: str
    expiry: datetime
    status: ReservationStatus = ReservationStatus.REQUESTED
    answer: str | None = None  # the station's own status word
