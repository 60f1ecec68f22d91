"""Transaction rules (pure): starting, stopping and the events of a session, and the energy it charged.

Nothing is lost and nothing counts twice: a station that did not hear our answer sends the same message
again, and a station that was offline sends its queued messages later with past timestamps. The rules
below are written so that applying a message twice, or late, gives the same session.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Final

from chargeflow.csm.model import (
    MeterSample,
    StartRequest,
    StopRequest,
    TransactionEvent,
    TransactionRecord,
    TxEventType,
)

ENERGY_REGISTER: Final = "Energy.Active.Import.Register"
# OCPP 1.6 and 2.0.1: a StopTransaction / Ended event without a reason was stopped locally.
DEFAULT_STOP_REASON: Final = "Local"
NEW_ID: Final = 0  # the id of a session not yet stored; the repository assigns the real one
# Beyond 2**53 Wh a float no longer holds whole Wh, and no real register comes near it (it is 9 PWh); a
# reading that large is unreadable, like a signed value without a plain one.
_MAX_WH: Final = float(2**53)


def _wh(sample: MeterSample) -> int | None:
    try:
        value = float(sample.value)
    except ValueError:
        return None  # signed data without a plain value
    factor = 1000.0 if (sample.unit or "Wh") == "kWh" else 1.0
    wh = value * factor  # checked after scaling: a finite reading in kWh can overflow to infinity in Wh
    if not math.isfinite(wh) or abs(wh) >= _MAX_WH:
        return None
    return round(wh)


def register_wh(samples: Iterable[MeterSample]) -> int | None:
    """The latest reading of the energy import register in Wh, or None when the samples have none.

    A reading without a phase is the total; when a station sends only per-phase readings, their sum at
    the latest timestamp is the total.
    """
    registers = [
        s for s in samples if s.measurand == ENERGY_REGISTER and s.context != "Sample.Periodic.Clock"
    ]
    registers = registers or [s for s in samples if s.measurand == ENERGY_REGISTER]
    if not registers:
        return None
    latest = max(s.timestamp for s in registers)
    at_latest = [s for s in registers if s.timestamp == latest]
    totals = [w for s in at_latest if s.phase is None and (w := _wh(s)) is not None]
    if totals:
        return totals[-1]
    phased = [w for s in at_latest if (w := _wh(s)) is not None]
    return sum(phased) if phased else None


def is_same_start(existing: TransactionRecord, start: StartRequest) -> bool:
    """A repeated StartTransaction: same station, connector, meterStart and timestamp."""
    return (
        existing.station_id == start.station_id
        and existing.connector_id == start.connector_id
        and existing.meter_start_wh == start.meter_start_wh
        and existing.started_at == start.timestamp
    )


def from_start(start: StartRequest) -> TransactionRecord:
    return TransactionRecord(
        id=NEW_ID,
        station_id=start.station_id,
        evse_id=start.connector_id,
        connector_id=start.connector_id,
        started_at=start.timestamp,
        meter_start_wh=start.meter_start_wh,
        id_token=start.id_token,
        meter_stop_wh=start.meter_start_wh,
    )


def apply_stop(tx: TransactionRecord, stop: StopRequest) -> TransactionRecord:
    """Close the session; a session already closed stays as it was (a repeated StopTransaction)."""
    if not tx.active:
        return tx
    return replace(
        tx,
        meter_stop_wh=stop.meter_stop_wh,
        stopped_at=stop.timestamp,
        stop_reason=stop.reason or DEFAULT_STOP_REASON,
    )


def apply_meter_values(tx: TransactionRecord, samples: Iterable[MeterSample]) -> TransactionRecord:
    """Keep the highest register reading seen while the session runs (queued readings may come late)."""
    reading = register_wh(samples)
    if reading is None or not tx.active:
        return tx
    latest = reading if tx.meter_stop_wh is None else max(tx.meter_stop_wh, reading)
    start = tx.meter_start_wh if tx.meter_start_wh is not None else reading
    return replace(tx, meter_stop_wh=latest, meter_start_wh=start)


def is_new_session(tx: TransactionRecord, event: TransactionEvent, seen: Mapping[int, datetime]) -> bool:
    """Whether an event naming the transaction id of the ended session ``tx`` starts a new session.

    A 2.0.1 station numbers its transactions itself, and a station whose counter was reset (a factory
    reset, a new controller board) names a new session with an id it used before. ``seen`` maps the
    seqNo of each event already stored for ``tx`` to its timestamp. The same seqNo at the same time is
    the same message again (the station did not hear our answer); a seqNo that ``tx`` already used at
    another time, or a Started event after ``tx`` ended, is a new session with its own energy and bill.
    A Started event dated before the end is a late message of ``tx`` itself (queued while offline).
    """
    if tx.stopped_at is None:
        return False
    if seen.get(event.seq_no) == event.timestamp:
        return False
    if event.seq_no in seen:
        return True
    return event.event_type is TxEventType.STARTED and event.timestamp > tx.stopped_at


def apply_event(tx: TransactionRecord | None, event: TransactionEvent) -> TransactionRecord:
    """Fold one TransactionEvent into the session (2.0.1 E01–E15)."""
    reading = register_wh(event.samples)
    if tx is None:
        tx = TransactionRecord(
            id=NEW_ID,
            station_id=event.station_id,
            external_id=event.external_id,
            evse_id=event.evse_id,
            connector_id=event.connector_id,
            started_at=event.timestamp,
            meter_start_wh=reading,
            id_token=event.id_token,
            meter_stop_wh=reading,
        )
    elif event.event_type is TxEventType.STARTED:
        tx = replace(
            tx,
            started_at=min(tx.started_at, event.timestamp),
            meter_start_wh=reading if reading is not None else tx.meter_start_wh,
        )
    if tx.id_token is None and event.id_token is not None:
        tx = replace(tx, id_token=event.id_token)
    if tx.evse_id == 0 and event.evse_id:
        tx = replace(tx, evse_id=event.evse_id, connector_id=event.connector_id or tx.connector_id)
    if reading is not None:
        tx = replace(
            tx,
            meter_stop_wh=reading if tx.meter_stop_wh is None else max(tx.meter_stop_wh, reading),
            meter_start_wh=tx.meter_start_wh if tx.meter_start_wh is not None else reading,
        )
    if event.event_type is TxEventType.ENDED and tx.active:
        tx = replace(tx, stopped_at=event.timestamp, stop_reason=event.stopped_reason or DEFAULT_STOP_REASON)
    return tx
