"""The REST API's request and response bodies (OpenAPI is generated from these)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from chargeflow.csm.model import AuthStatus, MeterSample, StationRecord, TransactionRecord
from chargeflow.site import bounds


class _Body(BaseModel):
    # No NaN or infinity in any number: JSON has none, and one would pass every ``ge``/``le`` test.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _text(value: str) -> str:
    if bounds.has_nul(value):
        raise ValueError("must not contain a NUL character")  # PostgreSQL's text refuses it
    return value


def _utc(value: datetime) -> datetime:
    """A moment in UTC (one without an offset is read as UTC); refused if it leaves the calendar in UTC."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is beyond the calendar's range in UTC") from None


#: a string the database can store
Text = Annotated[str, AfterValidator(_text)]
#: a moment that converts to UTC
Moment = Annotated[datetime, AfterValidator(_utc)]
#: an id the database's INTEGER columns hold
Id = Annotated[int, Field(ge=0, le=bounds.MAX_ID)]


class StationIn(_Body):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
    password: str = Field(min_length=16, max_length=40, description="OCPP security profile 1 password")


class TokenIn(_Body):
    id_token: Text = Field(min_length=1, max_length=255)
    status: AuthStatus = AuthStatus.ACCEPTED
    expiry: Moment | None = None


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
    id_token: Text = Field(min_length=1, max_length=36)
    connector_id: Id | None = Field(default=None, ge=1)


class RemoteStopIn(_Body):
    transaction_id: Text = Field(min_length=1, max_length=36)


class ChargingLimitIn(_Body):
    connector_id: Id = Field(default=0, description="0: the whole station")
    limit: float = Field(
        ge=0,
        le=bounds.MAX_POWER_W,
        description=f"at most {bounds.MAX_CURRENT_A:g} A or {bounds.MAX_POWER_W:g} W",
    )
    unit: Literal["A", "W"] = "A"
    purpose: Literal["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"] = "TxDefaultProfile"
    transaction_id: Text | None = Field(
        default=None, max_length=36, description="the session a TxProfile applies to"
    )

    @model_validator(mode="after")
    def _limit_within_its_unit(self) -> ChargingLimitIn:
        if self.unit == "A":
            bounds.check_current_a(self.limit, "limit")
        return self

    @model_validator(mode="after")
    def _tx_profile_names_its_transaction(self) -> ChargingLimitIn:
        if (self.purpose == "TxProfile") != (self.transaction_id is not None):
            raise ValueError("a TxProfile needs transaction_id, and only a TxProfile takes one")
        if self.purpose == "ChargePointMaxProfile" and self.connector_id != 0:
            raise ValueError("a ChargePointMaxProfile applies to the whole station: connector_id 0")
        return self


class TriggerIn(_Body):
    message: Text = Field(
        min_length=1, max_length=50, description="e.g. Heartbeat, StatusNotification, MeterValues"
    )
    connector_id: Id | None = None


class StationAnswer(BaseModel):
    """The station's own answer to an operation (its CALLRESULT payload)."""

    station_id: str
    action: str
    answer: dict[str, Any]


class ReservationIn(_Body):
    connector_id: Id = Field(ge=1, description="the connector (1.6) or EVSE (2.x) to hold")
    id_token: Text = Field(min_length=1, max_length=20)
    expiry: Moment


class ReservationAnswer(StationAnswer):
    reservation_id: int
    status: str = Field(description="Requested, Accepted, Rejected, Used, Cancelled, Expired or Removed")
