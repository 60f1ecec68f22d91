"""An in-memory CSM repository: the fake for tests, held to the same contract tests as the SQL one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

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
from chargeflow.csm.ports import TxUpdate
from chargeflow.csm.transactions import is_new_session, is_same_start


class MemoryRepository:
    def __init__(self) -> None:
        self.stations: dict[str, StationRecord] = {}
        self.statuses: dict[tuple[str, int, int], ConnectorStatus] = {}
        self.tokens: dict[str, IdTokenRecord] = {}
        self.transactions: dict[int, TransactionRecord] = {}
        self.events: dict[int, dict[int, datetime]] = {}  # per session: the seqNo of each event, its time
        self.samples: dict[int | None, list[MeterSample]] = {}
        self.profiles: list[tuple[str, int, dict[str, Any], str, datetime]] = []
        self.reservations: dict[int, ReservationRecord] = {}

    async def get_station(self, station_id: str) -> StationRecord | None:
        return self.stations.get(station_id)

    async def save_station(self, station: StationRecord) -> None:
        self.stations[station.station_id] = station

    async def list_stations(self) -> Sequence[StationRecord]:
        return sorted(self.stations.values(), key=lambda s: s.station_id)

    async def record_status(self, station_id: str, status: ConnectorStatus) -> None:
        self.statuses[(station_id, status.evse_id, status.connector_id)] = status

    async def connector_statuses(self, station_id: str) -> Sequence[ConnectorStatus]:
        return [s for (sid, _, _), s in sorted(self.statuses.items()) if sid == station_id]

    async def get_id_token(self, id_token: str) -> IdTokenRecord | None:
        return self.tokens.get(id_token)

    async def put_id_token(self, token: IdTokenRecord) -> None:
        self.tokens[token.id_token] = token

    def _insert(self, tx: TransactionRecord) -> TransactionRecord:
        stored = replace(tx, id=len(self.transactions) + 1)
        self.transactions[stored.id] = stored
        return stored

    async def start_transaction(self, start: StartRequest, new: TransactionRecord) -> EventOutcome:
        for tx in self.transactions.values():
            if tx.external_id is None and is_same_start(tx, start):
                return EventOutcome(tx, duplicate=True)
        return EventOutcome(self._insert(new), duplicate=False)

    async def stop_transaction(
        self, stop: StopRequest, update: Callable[[TransactionRecord], TransactionRecord]
    ) -> TransactionRecord | None:
        tx = self.transactions.get(stop.transaction_id)
        if tx is None or tx.station_id != stop.station_id:
            return None
        self.transactions[tx.id] = updated = update(tx)
        if tx.active:
            self.samples.setdefault(tx.id, []).extend(stop.samples)
        return updated

    def _by_external(self, station_id: str, external_id: str) -> TransactionRecord | None:
        """The latest session the station named so (a reset station may have reused the id)."""
        found = None
        for tx in self.transactions.values():
            if tx.station_id == station_id and tx.external_id == external_id:
                found = tx
        return found

    async def apply_event(self, event: TransactionEvent, update: TxUpdate) -> EventOutcome:
        existing = self._by_external(event.station_id, event.external_id)
        seen = self.events.get(existing.id, {}) if existing is not None else {}
        if existing is not None and is_new_session(existing, event, seen):
            existing, seen = None, {}
        if existing is not None and event.seq_no in seen:
            return EventOutcome(existing, duplicate=True)
        updated = update(existing)
        if existing is None:
            updated = self._insert(updated)
        else:
            self.transactions[existing.id] = updated
        self.events.setdefault(updated.id, {})[event.seq_no] = event.timestamp
        self.samples.setdefault(updated.id, []).extend(event.samples)
        return EventOutcome(updated, duplicate=False)

    async def add_meter_values(
        self,
        station_id: str,
        evse_id: int,
        transaction_id: int | None,
        samples: Sequence[MeterSample],
        update: Callable[[TransactionRecord], TransactionRecord] | None = None,
    ) -> None:
        tx = self.transactions.get(transaction_id) if transaction_id is not None else None
        if tx is not None and tx.station_id != station_id:
            tx = None
        if tx is not None and update is not None:
            self.transactions[tx.id] = update(tx)
        self.samples.setdefault(tx.id if tx else None, []).extend(samples)

    async def get_transaction(self, transaction_id: int) -> TransactionRecord | None:
        return self.transactions.get(transaction_id)

    async def list_transactions(
        self, station_id: str | None = None, active: bool | None = None
    ) -> Sequence[TransactionRecord]:
        return [
            tx
            for tx in self.transactions.values()
            if (station_id is None or tx.station_id == station_id) and (active is None or tx.active == active)
        ]

    async def meter_values(self, transaction_id: int) -> Sequence[MeterSample]:
        return list(self.samples.get(transaction_id, []))

    async def set_charging_needs(self, needs: ChargingNeeds) -> TransactionRecord | None:
        for tx in self.transactions.values():
            if tx.station_id == needs.station_id and tx.evse_id == needs.evse_id and tx.active:
                self.transactions[tx.id] = updated = replace(
                    tx, departure_time=needs.departure_time, energy_need_wh=needs.energy_need_wh
                )
                return updated
        return None

    async def create_reservation(self, reservation: ReservationRecord) -> ReservationRecord:
        stored = replace(reservation, id=len(self.reservations) + 1)
        self.reservations[stored.id] = stored
        return stored

    async def update_reservation(
        self, station_id: str, reservation_id: int, status: ReservationStatus, answer: str | None = None
    ) -> ReservationRecord | None:
        found = self.reservations.get(reservation_id)
        if found is None or found.station_id != station_id:
            return None
        self.reservations[reservation_id] = updated = replace(
            found, status=status, answer=answer or found.answer
        )
        return updated

    async def get_reservation(self, reservation_id: int) -> ReservationRecord | None:
        return self.reservations.get(reservation_id)

    async def record_charging_profile(
        self, station_id: str, evse_id: int, profile: dict[str, Any], status: str, sent_at: datetime
    ) -> None:
        self.profiles.append((station_id, evse_id, profile, status, sent_at))
