"""The CSM repository on SQLAlchemy 2 (async, Core statements), for SQLite and PostgreSQL.

Every method is one database transaction, committed before it returns: the OCPP answer that follows
means the message is on disk. SQLite allows one writer at a time; writers queue on an asyncio lock
rather than spin on the database's busy timeout.
"""

from __future__ import annotations

import asyncio
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
    StartRequest,
    StationRecord,
    StopRequest,
    TransactionEvent,
    TransactionRecord,
)
from chargeflow.csm.ports import TxUpdate
from chargeflow.store.database import is_sqlite
from chargeflow.store.tables import (
    charging_profiles,
    connectors,
    id_tokens,
    meter_values,
    stations,
    transaction_events,
    transactions,
)

_TX_COLUMNS = (
    "station_id",
    "external_id",
    "evse_id",
    "connector_id",
    "id_token",
    "meter_start_wh",
    "meter_stop_wh",
    "started_at",
    "stopped_at",
    "stop_reason",
    "departure_time",
    "energy_need_wh",
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


def _tx(row: Row[Any]) -> TransactionRecord:
    m = row._mapping
    return TransactionRecord(id=m["id"], **{name: m[name] for name in _TX_COLUMNS})


def _tx_values(tx: TransactionRecord) -> dict[str, Any]:
    return {name: getattr(tx, name) for name in _TX_COLUMNS}


def _sample_rows(
    station_id: str, evse_id: int, transaction_id: int | None, samples: Sequence[MeterSample]
) -> list[dict[str, Any]]:
    return [
        {"station_id": station_id, "evse_id": evse_id, "transaction_id": transaction_id, **asdict(s)}
        for s in samples
    ]


class SqlRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._write_lock = asyncio.Lock() if is_sqlite(engine) else None

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            yield await stack.enter_async_context(self._engine.begin())

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
        async with self._write() as c:
            updated = await c.execute(
                stations.update().where(stations.c.id == station.station_id).values(values)
            )
            if updated.rowcount == 0:
                await c.execute(stations.insert().values(values))

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
        async with self._write() as c:
            if (await c.execute(connectors.update().where(key).values(values))).rowcount == 0:
                await c.execute(
                    connectors.insert().values(
                        station_id=station_id,
                        evse_id=status.evse_id,
                        connector_id=status.connector_id,
                        **values,
                    )
                )

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
        async with self._write() as c:
            updated = await c.execute(
                id_tokens.update().where(id_tokens.c.id_token == token.id_token).values(values)
            )
            if updated.rowcount == 0:
                await c.execute(id_tokens.insert().values(id_token=token.id_token, **values))

    # Transactions -----------------------------------------------------------------------------------

    @staticmethod
    async def _insert_tx(c: AsyncConnection, tx: TransactionRecord) -> TransactionRecord:
        result = await c.execute(transactions.insert().values(_tx_values(tx)).returning(transactions.c.id))
        return replace(tx, id=result.scalar_one())

    @staticmethod
    async def _update_tx(c: AsyncConnection, tx: TransactionRecord) -> None:
        await c.execute(transactions.update().where(transactions.c.id == tx.id).values(_tx_values(tx)))

    async def start_transaction(self, start: StartRequest, new: TransactionRecord) -> EventOutcome:
        query = select(transactions).where(
            (transactions.c.station_id == start.station_id)
            & (transactions.c.connector_id == start.connector_id)
            & (transactions.c.meter_start_wh == start.meter_start_wh)
            & (transactions.c.started_at == start.timestamp)
            & transactions.c.external_id.is_(None)
        )
        async with self._write() as c:
            row = (await c.execute(query)).first()
            if row is not None:
                return EventOutcome(_tx(row), duplicate=True)
            return EventOutcome(await self._insert_tx(c, new), duplicate=False)

    async def stop_transaction(
        self, stop: StopRequest, update: Callable[[TransactionRecord], TransactionRecord]
    ) -> TransactionRecord | None:
        query = select(transactions).where(
            (transactions.c.id == stop.transaction_id) & (transactions.c.station_id == stop.station_id)
        )
        async with self._write() as c:
            row = (await c.execute(query)).first()
            if row is None:
                return None
            tx = _tx(row)
            updated = update(tx)
            if updated != tx:
                await self._update_tx(c, updated)
                if stop.samples:
                    await c.execute(
                        meter_values.insert(), _sample_rows(tx.station_id, tx.evse_id, tx.id, stop.samples)
                    )
            return updated

    async def apply_event(self, event: TransactionEvent, update: TxUpdate) -> EventOutcome:
        by_external = select(transactions).where(
            (transactions.c.station_id == event.station_id)
            & (transactions.c.external_id == event.external_id)
        )
        seen = select(transaction_events.c.seq_no).where(
            (transaction_events.c.station_id == event.station_id)
            & (transaction_events.c.external_id == event.external_id)
            & (transaction_events.c.seq_no == event.seq_no)
        )
        async with self._write() as c:
            row = (await c.execute(by_external)).first()
            existing = _tx(row) if row else None
            if existing is not None and (await c.execute(seen)).first() is not None:
                return EventOutcome(existing, duplicate=True)
            updated = update(existing)
            if existing is None:
                updated = await self._insert_tx(c, updated)
            elif updated != existing:
                await self._update_tx(c, updated)
            await c.execute(
                transaction_events.insert().values(
                    station_id=event.station_id,
                    external_id=event.external_id,
                    seq_no=event.seq_no,
                    event_type=str(event.event_type),
                    trigger_reason=event.trigger_reason,
                    timestamp=event.timestamp,
                    offline=event.offline,
                )
            )
            if event.samples:
                await c.execute(
                    meter_values.insert(),
                    _sample_rows(event.station_id, updated.evse_id, updated.id, event.samples),
                )
            return EventOutcome(updated, duplicate=False)

    async def add_meter_values(
        self,
        station_id: str,
        evse_id: int,
        transaction_id: int | None,
        samples: Sequence[MeterSample],
        update: Callable[[TransactionRecord], TransactionRecord] | None = None,
    ) -> None:
        async with self._write() as c:
            tx: TransactionRecord | None = None
            if transaction_id is not None:
                row = (
                    await c.execute(
                        select(transactions).where(
                            (transactions.c.id == transaction_id) & (transactions.c.station_id == station_id)
                        )
                    )
                ).first()
                tx = _tx(row) if row else None
            if tx is not None and update is not None and (updated := update(tx)) != tx:
                await self._update_tx(c, updated)
            if samples:
                await c.execute(
                    meter_values.insert(), _sample_rows(station_id, evse_id, tx.id if tx else None, samples)
                )

    async def get_transaction(self, transaction_id: int) -> TransactionRecord | None:
        async with self._read() as c:
            row = (await c.execute(select(transactions).where(transactions.c.id == transaction_id))).first()
        return _tx(row) if row else None

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
        return [_tx(r) for r in rows]

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
        query = (
            select(transactions)
            .where(
                (transactions.c.station_id == needs.station_id)
                & (transactions.c.evse_id == needs.evse_id)
                & transactions.c.stopped_at.is_(None)
            )
            .order_by(transactions.c.started_at.desc())
            .limit(1)
        )
        async with self._write() as c:
            row = (await c.execute(query)).first()
            if row is None:
                return None
            updated = replace(
                _tx(row), departure_time=needs.departure_time, energy_need_wh=needs.energy_need_wh
            )
            await self._update_tx(c, updated)
            return updated

    async def record_charging_profile(
        self, station_id: str, evse_id: int, profile: dict[str, Any], status: str, sent_at: datetime
    ) -> None:
        async with self._write() as c:
            await c.execute(
                charging_profiles.insert().values(
                    station_id=station_id, evse_id=evse_id, profile=profile, status=status, sent_at=sent_at
                )
            )
