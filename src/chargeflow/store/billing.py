"""Billing's store (``billing.ports.BillingStore``) on SQLAlchemy, for SQLite and PostgreSQL; and the
translation of the CSM's sessions and meter values into billing's ``FinishedSession``.

Writes go through the CSM's group writer (one writer per database, as ``store.sql`` explains), reads use
their own connections. Money is stored as exact decimal text.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chargeflow.billing.attribution import Shares, Source
from chargeflow.billing.cdr import FinishedSession
from chargeflow.billing.cdr import MeterSample as RegisterSample
from chargeflow.billing.ports import CdrRecord, SessionStart, SessionTariff
from chargeflow.billing.tariff import Price
from chargeflow.csm.model import MeterSample, TransactionRecord
from chargeflow.csm.ports import CsmRepository
from chargeflow.csm.transactions import register_wh
from chargeflow.store.tables import cdrs, session_sources, session_tariffs, tariffs, transactions
from chargeflow.store.writer import GroupWriter, WriteContext

_CURRENT = "Current.Import"


# The CSM's sessions in billing's terms ----------------------------------------------------------------


def session_start(tx: TransactionRecord) -> SessionStart:
    return SessionStart(str(tx.id), tx.station_id, tx.id_token, tx.started_at)


def finished_session(tx: TransactionRecord, samples: Sequence[MeterSample]) -> FinishedSession | None:
    """The ended session with its register readings (``register_readings``); None while it runs."""
    if tx.stopped_at is None:
        return None
    end = max(tx.stopped_at, tx.started_at)
    return FinishedSession(
        session_id=str(tx.id),
        evse_id=tx.station_id,
        id_token=tx.id_token or "",
        start=tx.started_at,
        end=end,
        samples=tuple(register_readings(tx, samples, end)),
        signed_values=signed_values(samples),
    )


def register_readings(
    tx: TransactionRecord, samples: Sequence[MeterSample], end: datetime
) -> list[RegisterSample]:
    """The session's register readings up to ``end``: one per instant, never running backwards (a late
    or repeated reading below the last is left out), with meterStart at the start and the last reading
    the session knows (its meterStop once it has ended) at ``end``."""
    readings: list[RegisterSample] = []
    if tx.meter_start_wh is not None:
        readings.append(RegisterSample(tx.started_at, tx.meter_start_wh))
    ordered = sorted(samples, key=lambda s: s.timestamp)
    for at, group in itertools.groupby(ordered, key=lambda s: s.timestamp):
        at_once = list(group)
        wh = register_wh(at_once)
        if wh is None or not tx.started_at <= at <= end:
            continue
        _append(readings, RegisterSample(at, wh, _current_a(at_once)))
    if tx.meter_stop_wh is not None and end > tx.started_at:
        _append(readings, RegisterSample(end, tx.meter_stop_wh))
    return readings


def _append(readings: list[RegisterSample], sample: RegisterSample) -> None:
    if not readings:
        readings.append(sample)
        return
    last = readings[-1]
    if sample.energy_wh < last.energy_wh:
        return
    if sample.at == last.at:
        readings[-1] = RegisterSample(last.at, sample.energy_wh, last.current_a or sample.current_a)
    else:
        readings.append(sample)


def _current_a(samples: Iterable[MeterSample]) -> float | None:
    """The current summed over the phases (OCPI's CURRENT), or None when none was sent."""
    values = []
    for s in samples:
        if s.measurand == _CURRENT and s.phase not in (None, "N"):
            with contextlib.suppress(ValueError):
                values.append(float(s.value))
    return sum(values) if values else None


def signed_values(samples: Iterable[MeterSample]) -> tuple[str, ...]:
    """The OCMF strings exactly as the station sent them: OCPP 1.6 SignedData carries the string itself,
    2.0.1 a signedMeterValue whose signedMeterData holds it. Each once, in the order they came."""
    out: list[str] = []
    for s in samples:
        if s.signed is None:
            continue
        text = s.signed
        if not text.startswith("OCMF|"):
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                text = str(json.loads(text)["signedMeterData"])
        if text not in out:
            out.append(text)
    return tuple(out)


async def read_session_start(sessions: CsmRepository, session_id: str) -> SessionStart | None:
    tx = await sessions.get_transaction(int(session_id))
    return session_start(tx) if tx is not None else None


async def read_finished_session(sessions: CsmRepository, session_id: str) -> FinishedSession | None:
    tx = await sessions.get_transaction(int(session_id))
    if tx is None or tx.active:
        return None
    return finished_session(tx, await sessions.meter_values(tx.id))


# Rows --------------------------------------------------------------------------------------------------


def _cdr(row: Row[Any]) -> CdrRecord:
    m = row._mapping
    incl = m["cost_incl_vat"]
    return CdrRecord(
        id=m["id"],
        session_id=str(m["transaction_id"]),
        evse_id=m["evse_id"],
        id_token=m["id_token"],
        start=m["start_at"],
        end=m["end_at"],
        currency=m["currency"],
        energy_wh=m["energy_wh"],
        cost=Price(Decimal(m["cost_excl_vat"]), Decimal(incl) if incl is not None else None),
        signature=m["signature"],
        tariff_id=m["tariff_id"],
        ocpi=m["cdr"],
    )


def _cdr_values(record: CdrRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "transaction_id": int(record.session_id),
        "evse_id": record.evse_id,
        "id_token": record.id_token,
        "start_at": record.start,
        "end_at": record.end,
        "currency": record.currency,
        "energy_wh": record.energy_wh,
        "cost_excl_vat": str(record.cost.excl_vat),
        "cost_incl_vat": str(record.cost.incl_vat) if record.cost.incl_vat is not None else None,
        "signature": record.signature,
        "tariff_id": record.tariff_id,
        "cdr": record.ocpi,
    }


def _shares(row: Row[Any]) -> Shares:
    return Shares({Source.PV: row.pv_wh, Source.BATTERY: row.battery_wh, Source.GRID: row.grid_wh})


class SqlBillingStore:
    def __init__(self, engine: AsyncEngine, writer: GroupWriter, sessions: CsmRepository) -> None:
        self._engine = engine
        self._writer = writer
        self._sessions = sessions

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as connection:
            yield connection

    async def api_tariffs(self) -> Sequence[dict[str, Any]]:
        async with self._read() as c:
            rows = (await c.execute(select(tariffs.c.entry).order_by(tariffs.c.position))).all()
        return [r.entry for r in rows]

    async def replace_api_tariffs(self, entries: Sequence[dict[str, Any]]) -> None:
        rows = [{"position": i, "entry": e} for i, e in enumerate(entries)]

        def write(ctx: WriteContext) -> None:
            ctx.connection.execute(tariffs.delete())
            if rows:
                ctx.connection.execute(tariffs.insert(), rows)

        await self._writer.submit(write)

    async def save_session_tariff(self, session_id: str, chosen: SessionTariff, at: datetime) -> None:
        key = int(session_id)

        def write(ctx: WriteContext) -> None:
            query = select(session_tariffs.c.transaction_id).where(session_tariffs.c.transaction_id == key)
            if ctx.connection.execute(query).first() is None:
                ctx.connection.execute(
                    session_tariffs.insert().values(transaction_id=key, tariff=chosen.tariff, selected_at=at)
                )

        await self._writer.submit(write)

    async def session_tariff(self, session_id: str) -> SessionTariff | None:
        query = select(session_tariffs.c.tariff).where(session_tariffs.c.transaction_id == int(session_id))
        async with self._read() as c:
            row = (await c.execute(query)).first()
        return SessionTariff(row.tariff) if row is not None else None

    async def save_cdr(self, record: CdrRecord) -> bool:
        values = _cdr_values(record)

        def write(ctx: WriteContext) -> bool:
            query = select(cdrs.c.id).where(cdrs.c.transaction_id == values["transaction_id"])
            if ctx.connection.execute(query).first() is not None:
                return False
            ctx.connection.execute(cdrs.insert().values(values))
            return True

        return await self._writer.submit(write)

    async def get_cdr(self, cdr_id: str) -> CdrRecord | None:
        async with self._read() as c:
            row = (await c.execute(select(cdrs).where(cdrs.c.id == cdr_id))).first()
        return _cdr(row) if row is not None else None

    async def list_cdrs(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> Sequence[CdrRecord]:
        query = select(cdrs).order_by(cdrs.c.start_at, cdrs.c.id)
        if since is not None:
            query = query.where(cdrs.c.start_at >= since)
        if until is not None:
            query = query.where(cdrs.c.start_at < until)
        async with self._read() as c:
            rows = (await c.execute(query)).all()
        return [_cdr(r) for r in rows]

    async def add_shares(self, shares: Mapping[str, Shares]) -> None:
        rows = {
            int(s): {
                "pv_wh": v.of(Source.PV),
                "battery_wh": v.of(Source.BATTERY),
                "grid_wh": v.of(Source.GRID),
            }
            for s, v in shares.items()
        }
        if not rows:
            return
        t = session_sources.c

        def write(ctx: WriteContext) -> None:
            c = ctx.connection
            known = {
                r.transaction_id
                for r in c.execute(select(t.transaction_id).where(t.transaction_id.in_(rows)))
            }
            for tx_id, add in rows.items():
                if tx_id in known:
                    c.execute(
                        session_sources.update()
                        .where(t.transaction_id == tx_id)
                        .values(
                            pv_wh=t.pv_wh + add["pv_wh"],
                            battery_wh=t.battery_wh + add["battery_wh"],
                            grid_wh=t.grid_wh + add["grid_wh"],
                        )
                    )
                else:
                    c.execute(session_sources.insert().values(transaction_id=tx_id, **add))

        await self._writer.submit(write)

    async def shares(self) -> dict[str, Shares]:
        async with self._read() as c:
            rows = (await c.execute(select(session_sources))).all()
        return {str(r.transaction_id): _shares(r) for r in rows}

    async def session_start(self, session_id: str) -> SessionStart | None:
        return await read_session_start(self._sessions, session_id)

    async def finished_session(self, session_id: str) -> FinishedSession | None:
        return await read_finished_session(self._sessions, session_id)

    async def finished_without_cdr(self) -> Sequence[str]:
        query = (
            select(transactions.c.id)
            .where(transactions.c.stopped_at.is_not(None))
            .where(~select(cdrs.c.id).where(cdrs.c.transaction_id == transactions.c.id).exists())
            .order_by(transactions.c.id)
        )
        async with self._read() as c:
            rows = (await c.execute(query)).all()
        return [str(r.id) for r in rows]
