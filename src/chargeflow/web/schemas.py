"""The REST API's request and response bodies (OpenAPI is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chargeflow.csm.model import AuthStatus, MeterSample, StationRecord, TransactionRecord


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StationIn(_Body):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
    password: str = Field(min_length=16, max_length=40, description="OCPP security profile 1 password")


class TokenIn(_Body):
    id_token: str = Field(min_length=1, max_length=255)
    status: AuthStatus = AuthStatus.ACCEPTED
    expiry: datetime | None = None


class ConnectorOut(BaseModel):
    evse_id: int
    connector_id: int
    status: str
    error_code: str | None
    updated_at: datetime | None


class StationOut(BaseModel):
    id: str
    connected: bool
    ocpp_version: str | None
    vendor: str | None
    model: str | None
    firmware_version: str | None
    last_boot_at: datetime | None
    last_heartbeat_at: datetime | None

    @classmethod
    def of(cls, station: StationRecord, connected: bool) -> StationOut:
        return cls(
            id=station.station_id,
            connected=connected,
            ocpp_version=station.ocpp_version,
            vendor=station.vendor,
            model=station.model,
            firmware_version=station.firmware_version,
            last_boot_at=station.last_boot_at,
            last_heartbeat_at=station.last_heartbeat_at,
        )


class StationDetail(StationOut):
    connectors: list[ConnectorOut]


class MeterValueOut(BaseModel):
    timestamp: datetime
    measurand: str
    value: str
    unit: str | None
    phase: str | None
    context: str | None
    signed: str | None

    @classmethod
    def of(cls, s: MeterSample) -> MeterValueOut:
        return cls(
            timestamp=s.timestamp,
            measurand=s.measurand,
            value=s.value,
            unit=s.unit,
            phase=s.phase,
            context=s.context,
            signed=s.signed,
        )


class SessionOut(BaseModel):
    id: int
    station_id: str
    transaction_id: str = Field(description="the id the station uses: ours in 1.6, the station's in 2.x")
    evse_id: int
    connector_id: int
    id_token: str | None
    start: datetime
    stop: datetime | None
    active: bool
    meter_start_wh: int | None
    meter_stop_wh: int | None
    energy_wh: int | None
    stop_reason: str | None
    departure_time: datetime | None
    energy_need_wh: int | None

    @classmethod
    def of(cls, tx: TransactionRecord) -> SessionOut:
        return cls(
            id=tx.id,
            station_id=tx.station_id,
            transaction_id=tx.external_id or str(tx.id),
            evse_id=tx.evse_id,
            connector_id=tx.connector_id,
            id_token=tx.id_token,
            start=tx.started_at,
            stop=tx.stopped_at,
            active=tx.active,
            meter_start_wh=tx.meter_start_wh,
            meter_stop_wh=tx.meter_stop_wh,
            energy_wh=tx.energy_wh,
            stop_reason=tx.stop_reason,
            departure_time=tx.departure_time,
            energy_need_wh=tx.energy_need_wh,
        )


class SessionDetail(SessionOut):
    meter_values: list[MeterValueOut]


class ResetIn(_Body):
    type: Literal["soft", "hard"] = "soft"


class RemoteStartIn(_Body):
    id_token: str = Field(min_length=1, max_length=36)
    connector_id: int | None = Field(default=None, ge=1)


class RemoteStopIn(_Body):
    transaction_id: str = Field(min_length=1, max_length=36)


class ChargingLimitIn(_Body):
    connector_id: int = Field(default=0, ge=0, description="0: the whole station")
    limit: float = Field(ge=0)
    unit: Literal["A", "W"] = "A"
    purpose: Literal["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"] = "TxDefaultProfile"
    transaction_id: str | None = Field(default=None, description="the session a TxProfile applies to")

    @model_validator(mode="after")
    def _tx_profile_names_its_transaction(self) -> ChargingLimitIn:
        if (self.purpose == "TxProfile") != (self.transaction_id is not None):
            raise ValueError("a TxProfile needs transaction_id, and only a TxProfile takes one")
        if self.purpose == "ChargePointMaxProfile" and self.connector_id != 0:
            raise ValueError("a ChargePointMaxProfile applies to the whole station: connector_id 0")
        return self


class TriggerIn(_Body):
    message: str = Field(min_length=1, description="e.g. Heartbeat, StatusNotification, MeterValues")
    connector_id: int | None = Field(default=None, ge=0)


class StationAnswer(BaseModel):
    """The station's own answer to an operation (its CALLRESULT payload)."""

    station_id: str
    action: str
    answer: dict[str, Any]


class ReservationIn(_Body):
    connector_id: int = Field(ge=1, description="the connector (1.6) or EVSE (2.x) to hold")
    id_token: str = Field(min_length=1, max_length=20)
    expiry: datetime


class ReservationAnswer(StationAnswer):
    reservation_id: int
    status: str = Field(description="Requested, Accepted, Rejected, Used, Cancelled, Expired or Removed")
