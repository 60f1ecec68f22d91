"""The ports the CSM service needs; ``store`` provides the SQL and the in-memory adapters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from chargeflow.csm.model import (
    ChargingNeeds,
    ConnectorStatus,
    EventOutcome,
    IdTokenRecord,
    MeterSample,
    ReservationRecord,
    ReservationStatus,
    StartRequest,
    StationRecord,
    StopRequest,
    TransactionEvent,
    TransactionRecord,
)

TxUpdate = Callable[[TransactionRecord | None], TransactionRecord]


class CsmRepository(Protocol):
    """Every method is one database transaction: a message is acknowledged only after it returns."""

    async def get_station(self, station_id: str) -> StationRecord | None: ...

    async def save_station(self, station: StationRecord) -> None: ...

    async def list_stations(self) -> Sequence[StationRecord]: ...

    async def record_status(self, station_id: str, status: ConnectorStatus) -> None: ...

    async def connector_statuses(self, station_id: str) -> Sequence[ConnectorStatus]: ...

    async def get_id_token(self, id_token: str) -> IdTokenRecord | None: ...

    async def put_id_token(self, token: IdTokenRecord) -> None: ...

    async def start_transaction(self, start: StartRequest, new: TransactionRecord) -> EventOutcome:
        """Store ``new`` unless a session with the same start key exists; then return that one."""
        ...

    async def stop_transaction(
        self, stop: StopRequest, update: Callable[[TransactionRecord], TransactionRecord]
    ) -> TransactionRecord | None:
        """Apply ``update`` to the session and store the stop's meter values; None if unknown."""
        ...

    async def apply_event(self, event: TransactionEvent, update: TxUpdate) -> EventOutcome:
        """Store the event once per (station, transaction, seqNo) and fold it into the session."""
        ...

    async def add_meter_values(
        self,
        station_id: str,
        evse_id: int,
        transaction_id: int | None,
        samples: Sequence[MeterSample],
        update: Callable[[TransactionRecord], TransactionRecord] | None = None,
    ) -> None: ...

    async def get_transaction(self, transaction_id: int) -> TransactionRecord | None: ...

    async def list_transactions(
        self, station_id: str | None = None, active: bool | None = None
    ) -> Sequence[TransactionRecord]: ...

    async def meter_values(self, transaction_id: int) -> Sequence[MeterSample]: ...

    async def set_charging_needs(self, needs: ChargingNeeds) -> TransactionRecord | None:
        """Attach the EV's needs to the session running on the EVSE; None when none runs."""
        ...

    async def create_reservation(self, reservation: ReservationRecord) -> ReservationRecord:
        """Store a new reservation; the repository assigns its id."""
        ...

    async def update_reservation(
        self, station_id: str, reservation_id: int, status: ReservationStatus, answer: str | None = None
    ) -> ReservationRecord | None: ...

    async def get_reservation(self, reservation_id: int) -> ReservationRecord | None: ...

    async def record_charging_profile(
        self, station_id: str, evse_id: int, profile: dict[str, Any], status: str, sent_at: datetime
    ) -> None: ...


class SessionHooks(Protocol):
    """Told of a session's start and end once they are stored (billing chooses the tariff, builds the
    CDR). A hook may be called again for the same session (a station repeats a message): it must be
    idempotent. Its failure never fails the station's message, which is already stored."""

    async def session_started(self, tx: TransactionRecord) -> None: ...

    async def session_ended(self, tx: TransactionRecord) -> None: ...
