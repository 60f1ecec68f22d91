"""Writing sessions (transactions, their events and meter values) inside the group writer's batches.

The running sessions are cached after commit, keyed by id and by the station's own transaction id,
with the event numbers already stored: a MeterValues or TransactionEvent then costs no SELECT, and
its UPDATE and INSERTs join the batch's bulk statements. The cache holds only what committed
batches wrote, and sessions leave it when they end. It assumes one writer per database, which
``chargeflow serve`` is: a node owns its stations' connections and so their sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Row, bindparam, select

from chargeflow.csm.model import (
    ChargingNeeds,
    EventOutcome,
    MeterSample,
    StartRequest,
    StopRequest,
    TransactionEvent,
    TransactionRecord,
)
from chargeflow.csm.ports import TxUpdate
from chargeflow.csm.transactions import is_new_session
from chargeflow.store.tables import meter_values, transaction_events, transactions
from chargeflow.store.writer import WriteContext

TX_COLUMNS: Final = (
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
_SAMPLE_FIELDS: Final = ("timestamp", "value", "measurand", "phase", "unit", "location", "context", "signed")
MAX_CACHED: Final = 100_000

# Statements built once with bind parameters: building one per call costs more than running it.
_BY_ID = select(transactions).where(
    (transactions.c.id == bindparam("tx_id")) & (transactions.c.station_id == bindparam("sid"))
)
# The latest session with the id: a station whose counter was reset may have named an older one so too.
_BY_EXTERNAL = (
    select(transactions)
    .where((transactions.c.station_id == bindparam("sid")) & (transactions.c.external_id == bindparam("ext")))
    .order_by(transactions.c.id.desc())
    .limit(1)
)
_BY_START = select(transactions).where(
    (transactions.c.station_id == bindparam("sid"))
    & (transactions.c.connector_id == bindparam("cid"))
    & (transactions.c.meter_start_wh == bindparam("wh"))
    & (transactions.c.started_at == bindparam("at"))
    & transactions.c.external_id.is_(None)
)
_ACTIVE_ON_EVSE = (
    select(transactions)
    .where(
        (transactions.c.station_id == bindparam("sid"))
        & (transactions.c.evse_id == bindparam("evse"))
        & transactions.c.stopped_at.is_(None)
    )
    .order_by(transactions.c.started_at.desc())
    .limit(1)
)
_SEEN = select(transaction_events.c.seq_no, transaction_events.c.timestamp).where(
    transaction_events.c.transaction_id == bindparam("tx_id")
)
_INSERT = transactions.insert().returning(transactions.c.id)
_UPDATE = transactions.update().where(transactions.c.id == bindparam("tx_id"))
# A reading that only moves the register: the same UPDATE, staged apart and given only meter_stop_wh, so
# the bulk writer compiles it to SET that one column and none of the table's indexes is touched (the
# whole-row UPDATE rewrites the entries of all three indexes, and cost a MeterValues half of its write).
_UPDATE_METER_STOP = transactions.update().where(transactions.c.id == bindparam("tx_id"))
_INSERT_EVENT = transaction_events.insert()
_INSERT_SAMPLES = meter_values.insert()


def tx_from_row(row: Row[Any]) -> TransactionRecord:
    m = row._mapping
    return TransactionRecord(id=m["id"], **{name: m[name] for name in TX_COLUMNS})


_NOT_THE_READING: Final = tuple(name for name in ("id", *TX_COLUMNS) if name != "meter_stop_wh")


def _only_the_reading_moved(before: TransactionRecord, after: TransactionRecord) -> bool:
    return all(getattr(before, name) == getattr(after, name) for name in _NOT_THE_READING)


def _values(tx: TransactionRecord) -> dict[str, Any]:
    return {name: getattr(tx, name) for name in TX_COLUMNS}


def sample_rows(
    station_id: str, evse_id: int, transaction_id: int | None, samples: Sequence[MeterSample]
) -> list[dict[str, Any]]:
    rows = []
    for sample in samples:
        row = {name: getattr(sample, name) for name in _SAMPLE_FIELDS}
        row.update(station_id=station_id, evse_id=evse_id, transaction_id=transaction_id)
        rows.append(row)
    return rows


@dataclass(slots=True)
class _Session:
    record: TransactionRecord
    seen: dict[int, datetime] = field(default_factory=dict)  # the seqNo of each stored event, its time


class SessionWrites:
    """Operations for the group writer; each takes the batch's ``WriteContext``."""

    def __init__(self) -> None:
        self._by_id: dict[int, _Session] = {}
        self._by_external: dict[tuple[str, str], int] = {}

    # The cache --------------------------------------------------------------------------------------

    def _remember(self, session: _Session) -> None:
        tx = session.record
        if not tx.active:
            self._by_id.pop(tx.id, None)
            if tx.external_id is not None:
                key = (tx.station_id, tx.external_id)
                if self._by_external.get(key) == tx.id:  # a newer session with the same id keeps its entry
                    del self._by_external[key]
            return
        if len(self._by_id) >= MAX_CACHED:
            self._by_id.clear()
            self._by_external.clear()
        self._by_id[tx.id] = session
        if tx.external_id is not None:
            self._by_external[(tx.station_id, tx.external_id)] = tx.id

    def _session(self, ctx: WriteContext, tx_id: int) -> _Session | None:
        found = ctx.overlay.get(("tx", tx_id)) or self._by_id.get(tx_id)
        return found if isinstance(found, _Session) else None

    def _load(self, ctx: WriteContext, row: Row[Any] | None) -> _Session | None:
        if row is None:
            return None
        tx = tx_from_row(row)
        known = self._session(ctx, tx.id)
        if known is not None:
            return known
        seen: dict[int, datetime] = {}
        if tx.external_id is not None:
            seen = {r.seq_no: r.timestamp for r in ctx.connection.execute(_SEEN, {"tx_id": tx.id})}
        return _Session(tx, seen)

    def _by_station_id(self, ctx: WriteContext, station_id: str, tx_id: int) -> _Session | None:
        session = self._session(ctx, tx_id)
        if session is not None:
            return session if session.record.station_id == station_id else None
        return self._load(ctx, ctx.connection.execute(_BY_ID, {"tx_id": tx_id, "sid": station_id}).first())

    def _by_external_id(self, ctx: WriteContext, station_id: str, external_id: str) -> _Session | None:
        key = ("ext", station_id, external_id)
        tx_id = ctx.overlay.get(key) or self._by_external.get((station_id, external_id))
        if isinstance(tx_id, int) and (session := self._session(ctx, tx_id)) is not None:
            return session
        params = {"sid": station_id, "ext": external_id}
        return self._load(ctx, ctx.connection.execute(_BY_EXTERNAL, params).first())

    def _keep(self, ctx: WriteContext, session: _Session, before: TransactionRecord | None = None) -> None:
        """Stage the session's new state: written with the batch, cached once committed.

        With ``before`` (the state it replaces), a change of the register reading alone is written as
        that one column, unless the batch already writes the whole row.
        """
        tx = session.record
        ctx.overlay[("tx", tx.id)] = session
        if tx.external_id is not None:
            ctx.overlay[("ext", tx.station_id, tx.external_id)] = tx.id
        if (
            before is not None
            and _only_the_reading_moved(before, tx)
            and not ctx.update_pending(_UPDATE, tx.id)
        ):
            ctx.update_later(_UPDATE_METER_STOP, tx.id, {"meter_stop_wh": tx.meter_stop_wh, "tx_id": tx.id})
        else:
            ctx.drop_update(_UPDATE_METER_STOP, tx.id)  # the whole row carries the latest reading
            ctx.update_later(_UPDATE, tx.id, {**_values(tx), "tx_id": tx.id})
        ctx.after_commit(lambda: self._remember(session))

    def _insert(self, ctx: WriteContext, tx: TransactionRecord) -> _Session:
        stored = replace(tx, id=ctx.connection.execute(_INSERT, _values(tx)).scalar_one())
        session = _Session(stored)
        ctx.overlay[("tx", stored.id)] = session
        if stored.external_id is not None:
            ctx.overlay[("ext", stored.station_id, stored.external_id)] = stored.id
        ctx.after_commit(lambda: self._remember(session))
        return session

    # Operations -------------------------------------------------------------------------------------

    def start(self, start: StartRequest, new: TransactionRecord) -> Callable[[WriteContext], EventOutcome]:
        def write(ctx: WriteContext) -> EventOutcome:
            params = {
                "sid": start.station_id,
                "cid": start.connector_id,
                "wh": start.meter_start_wh,
                "at": start.timestamp,
            }
            row = ctx.connection.execute(_BY_START, params).first()
            if row is not None:
                return EventOutcome(tx_from_row(row), duplicate=True)
            return EventOutcome(self._insert(ctx, new).record, duplicate=False)

        return write

    def stop(
        self, stop: StopRequest, update: Callable[[TransactionRecord], TransactionRecord]
    ) -> Callable[[WriteContext], TransactionRecord | None]:
        def write(ctx: WriteContext) -> TransactionRecord | None:
            session = self._by_station_id(ctx, stop.station_id, stop.transaction_id)
            if session is None:
                return None
            tx = session.record
            updated = update(tx)
            if updated != tx:
                session = _Session(updated, session.seen)
                self._keep(ctx, session)
                ctx.insert_later(_INSERT_SAMPLES, sample_rows(tx.station_id, tx.evse_id, tx.id, stop.samples))
            return updated

        return write

    def event(self, event: TransactionEvent, update: TxUpdate) -> Callable[[WriteContext], EventOutcome]:
        def write(ctx: WriteContext) -> EventOutcome:
            session = self._by_external_id(ctx, event.station_id, event.external_id)
            if session is not None and is_new_session(session.record, event, session.seen):
                session = None
            if session is not None and event.seq_no in session.seen:
                return EventOutcome(session.record, duplicate=True)
            if session is None:
                session = self._insert(ctx, update(None))
                before = None
            else:
                before = session.record
                session = _Session(update(session.record), session.seen)
            session.seen = {**session.seen, event.seq_no: event.timestamp}
            self._keep(ctx, session, before)
            tx = session.record
            ctx.insert_later(
                _INSERT_EVENT,
                [
                    {
                        "transaction_id": tx.id,
                        "station_id": event.station_id,
                        "external_id": event.external_id,
                        "seq_no": event.seq_no,
                        "event_type": str(event.event_type),
                        "trigger_reason": event.trigger_reason,
                        "timestamp": event.timestamp,
                        "offline": event.offline,
                    }
                ],
            )
            ctx.insert_later(_INSERT_SAMPLES, sample_rows(event.station_id, tx.evse_id, tx.id, event.samples))
            return EventOutcome(tx, duplicate=False)

        return write

    def meter_values(
        self,
        station_id: str,
        evse_id: int,
        transaction_id: int | None,
        samples: Sequence[MeterSample],
        update: Callable[[TransactionRecord], TransactionRecord] | None,
    ) -> Callable[[WriteContext], None]:
        def write(ctx: WriteContext) -> None:
            session = None if transaction_id is None else self._by_station_id(ctx, station_id, transaction_id)
            if (
                session is not None
                and update is not None
                and (updated := update(session.record)) != session.record
            ):
                self._keep(ctx, _Session(updated, session.seen), before=session.record)
            tx_id = session.record.id if session is not None else None
            ctx.insert_later(_INSERT_SAMPLES, sample_rows(station_id, evse_id, tx_id, samples))

        return write

    def charging_needs(self, needs: ChargingNeeds) -> Callable[[WriteContext], TransactionRecord | None]:
        def write(ctx: WriteContext) -> TransactionRecord | None:
            row = ctx.connection.execute(
                _ACTIVE_ON_EVSE, {"sid": needs.station_id, "evse": needs.evse_id}
            ).first()
            session = self._load(ctx, row)
            if session is None:
                return None
            updated = replace(
                session.record, departure_time=needs.departure_time, energy_need_wh=needs.energy_need_wh
            )
            self._keep(ctx, _Session(updated, session.seen))
            return updated

        return write
