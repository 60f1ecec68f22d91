"""The CSM repository on SQLAlchemy 2 (async, Core statements), for SQLite and PostgreSQL.

Every write is committed before its method returns, so the OCPP answer that follows means the message
is on disk. Writes go through the group writer (``writer.GroupWriter``): one transaction per batch of
messages, each a synchronous function on the driver's thread. Reads use their own connections.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chargeflow.csm.model import (
    AuthStatus,
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
from chargeflow.store.sessions import SessionWrites, tx_from_row
from chargeflow.store.tables import (
    charging_profiles,
    connectors,
    id_tokens,
    meter_values,
    reservations,
    stations,
    transactions,
)
from chargeflow.store.writer import GroupWriter, WriteContext


def _reservation(row: Row[Any]) -> ReservationRecord:
    m = row._mapping
    return ReservationRecord(
        id=m["id"],
        station_id=m["station_id"],
        connector_id=m["connector_id"],
        id_token=m["id_token"],
        expiry=m["expiry"],
        status=ReservationStatus(m["status"]),
        answer=m["answer"],
    )


def _station(row: Row[Any]) -> StationRecord:
    m = row._mapping
    return StationRecord(
        station_id=m["id"],
        password_hash=m["password_hash"],
        ocpp_version=m["ocpp_version"],
        vendor=m["vendor"],
        model=m["model"],
        serial_number=m["serial_number"],
        firmware_version=m["firmware_version"],
        registered_at=m["registered_at"],
        last_boot_at=m["last_boot_at"],
        last_heartbeat_at=m["last_heartbeat_at"],
    )


class SqlRepository:
    def __init__(self, engine: AsyncEngine, writer: GroupWriter) -> None:
        self._engine = engine
        self._writer = writer
        self._sessions = SessionWrites()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, engine: AsyncEngine) -> AsyncIterator[SqlRepository]:
        """The repository with its group writer running for the life of the block."""
        async with GroupWriter.open(engine) as writer:
            yield cls(engine, writer)

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as connection:
            yield connection

    # Stations ---------------------------------------------------------------------------------------

    async def get_station(self, station_id: str) -> StationRecord | None:
        async with self._read() as c:
            row = (await c.execute(select(stations).where(stations.c.id == station_id))).first()
        return _station(row) if row else None

    async def save_station(self, station: StationRecord) -> None:
        values = asdict(station)
        values["id"] = values.pop("station_id")

        def write(ctx: WriteContext) -> None:
            c = ctx.connection
            if (
                c.execute(
                    stations.update().where(stations.c.id == station.station_id).values(values)
                ).rowcount
                == 0
            ):
                c.execute(stations.insert().values(values))

        await self._writer.submit(write)

    async def list_stations(self) -> Sequence[StationRecord]:
        async with self._read() as c:
            rows = (await c.execute(select(stations).order_by(stations.c.id))).all()
        return [_station(r) for r in rows]

    async def record_status(self, station_id: str, status: ConnectorStatus) -> None:
        key = (
            (connectors.c.station_id == station_id)
            & (connectors.c.evse_id == status.evse_id)
            & (connectors.c.connector_id == status.connector_id)
        )
        values = {"status": status.status, "error_code": status.error_code, "updated_at": status.timestamp}

        def write(ctx: WriteContext) -> None:
            c = ctx.connection
            if c.execute(connectors.update().where(key).values(values)).rowcount == 0:
                c.execute(
                    connectors.insert().values(
                        station_id=station_id,
                        evse_id=status.evse_id,
                        connector_id=status.connector_id,
                        **values,
                    )
                )

        await self._writer.submit(write)

    async def connector_statuses(self, station_id: str) -> Sequence[ConnectorStatus]:
        query = (
            select(connectors)
            .where(connectors.c.station_id == station_id)
            .order_by(connectors.c.evse_id, connectors.c.connector_id)
        )
        async with self._read() as c:
            rows = (await c.execute(query)).all()
        return [
            ConnectorStatus(r.evse_id, r.connector_id, r.status, r.updated_at, r.error_code) for r in rows
        ]

    # Id tokens -------------------------------------------------------------------------------------

    async def get_id_token(self, id_token: str) -> IdTokenRecord | None:
        async with self._read() as c:
            row = (await c.execute(select(id_tokens).where(id_tokens.c.id_token == id_token))).first()
        return IdTokenRecord(row.id_token, AuthStatus(row.status), row.expiry) if row else None

    async def put_id_token(self, token: IdTokenRecord) -> None:
        values = {"status": str(token.status), "expiry": token.expiry}

        def write(ctx: WriteContext) -> None:
            c = ctx.connection
            query = id_tokens.update().where(id_tokens.c.id_token == token.id_token).values(values)
            if c.execute(query).rowcount == 0:
                c.execute(id_tokens.insert().values(id_token=token.id_token, **values))

        await self._writer.submit(write)

    # Transactions -----------------------------------------------------------------------------------

    async def start_transaction(self, start: StartRequest, new: TransactionRecord) -> EventOutcome:
        return await self._writer.submit(self._sessions.start(start, new))

    async def stop_transaction(
        self, stop: StopRequest, update: Callable[[TransactionRecord], TransactionRecord]
    ) -> TransactionRecord | None:
        return await self._writer.submit(self._sessions.stop(stop, update))

    async def apply_event(self, event: TransactionEvent, update: TxUpdate) -> EventOutcome:
        return await self._writer.submit(self._sessions.event(event, update))

    async def add_meter_values(
        self,
        station_id: str,
        evse_id: int,
        transaction_id: int | None,
        samples: Sequence[MeterSample],
        update: Callable[[TransactionRecord], TransactionRecord] | None = None,
    ) -> None:
        await self._writer.submit(
            self._sessions.meter_values(station_id, evse_id, transaction_id, samples, update)
        )

    async def get_transaction(self, transaction_id: int) -> TransactionRecord | None:
        async with self._read() as c:
            row = (await c.execute(select(transactions).where(transactions.c.id == transaction_id))).first()
        return tx_from_row(row) if row else None

    async def list_transactions(
        self, station_id: str | None = None, active: bool | None = None
    ) -> Sequence[TransactionRecord]:
        query = select(transactions).order_by(transactions.c.id)
        if station_id is not None:
            query = query.where(transactions.c.station_id == station_id)
        if active is not None:
            stopped = transactions.c.stopped_at
            query = query.where(stopped.is_(None) if active else stopped.is_not(None))
        async with self._read() as c:
            rows = (await c.execute(query)).all()
        return [tx_from_row(r) for r in rows]

    async def meter_values(self, transaction_id: int) -> Sequence[MeterSample]:
        query = (
            select(meter_values)
            .where(meter_values.c.transaction_id == transaction_id)
            .order_by(meter_values.c.timestamp, meter_values.c.id)
        )
        async with self._read() as c:
            rows = (await c.execute(query)).all()
        return [
            MeterSample(
                timestamp=r.timestamp,
                value=r.value,
                measurand=r.measurand,
                phase=r.phase,
                unit=r.unit,
                location=r.location,
                context=r.context,
                signed=r.signed,
            )
            for r in rows
        ]

    async def set_charging_needs(self, needs: ChargingNeeds) -> TransactionRecord | None:
        return await self._writer.submit(self._sessions.charging_needs(needs))

    async def create_reservation(self, reservation: ReservationRecord) -> ReservationRecord:
        values = asdict(reservation)
        del values["id"]
        values["status"] = str(reservation.status)

        def write(ctx: WriteContext) -> ReservationRecord:
            inserted = ctx.connection.execute(
                reservations.insert().values(values).returning(reservations.c.id)
            )
            return replace(reservation, id=inserted.scalar_one())

        return await self._writer.submit(write)

    async def update_reservation(
        self, station_id: str, reservation_id: int, status: ReservationStatus, answer: str | None = None
    ) -> ReservationRecord | None:
        key = (reservations.c.id == reservation_id) & (reservations.c.station_id == station_id)
        values: dict[str, Any] = {"status": str(status)}
        if answer is not None:
            values["answer"] = answer

        def write(ctx: WriteContext) -> ReservationRecord | None:
            ctx.connection.execute(reservations.update().where(key).values(values))
            row = ctx.connection.execute(select(reservations).where(key)).first()
            return _reservation(row) if row else None

        return await self._writer.submit(write)

    async def get_reservation(self, reservation_id: int) -> ReservationRecord | None:
        async with self._read() as c:
            row = (await c.execute(select(reservations).where(reservations.c.id == reservation_id))).first()
        return _reservation(row) if row else None

    async def record_charging_profile(
        self, station_id: str, evse_id: int, profile: dict[str, Any], status: str, sent_at: datetime
    ) -> None:
        values = {
            "station_id": station_id,
            "evse_id": evse_id,
            "profile": profile,
            "status": status,
            "sent_at": sent_at,
        }
        await self._writer.submit(
            lambda ctx: ctx.connection.execute(charging_profiles.insert().values(values))
        )
