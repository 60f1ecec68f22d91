"""One contract for every CSM repository: the in-memory fake, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chargeflow.csm import transactions
from chargeflow.csm.model import (
    AuthStatus,
    ChargingNeeds,
    ConnectorStatus,
    IdTokenRecord,
    MeterSample,
    ReservationRecord,
    ReservationStatus,
    StartRequest,
    StationRecord,
    StopRequest,
    TransactionEvent,
    TxEventType,
)
from chargeflow.csm.ports import CsmRepository

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_station_and_token_round_trip_with_aware_utc_times(repository: CsmRepository) -> None:
    station = StationRecord("S1", password_hash="h", ocpp_version="ocpp1.6", registered_at=T0)
    await repository.save_station(station)
    await repository.save_station(StationRecord("S0"))
    assert await repository.get_station("S1") == station
    assert [s.station_id for s in await repository.list_stations()] == ["S0", "S1"]
    token = IdTokenRecord("TOK", AuthStatus.BLOCKED, T0 + timedelta(days=3))
    await repository.put_id_token(token)
    await repository.put_id_token(IdTokenRecord("TOK", AuthStatus.ACCEPTED, T0))
    assert await repository.get_id_token("TOK") == IdTokenRecord("TOK", AuthStatus.ACCEPTED, T0)
    assert await repository.get_id_token("NONE") is None


async def test_connector_status_is_replaced_not_appended(repository: CsmRepository) -> None:
    await repository.save_station(StationRecord("S1"))
    await repository.record_status("S1", ConnectorStatus(1, 1, "Available", T0))
    await repository.record_status("S1", ConnectorStatus(1, 1, "Charging", T0 + timedelta(minutes=1)))
    await repository.record_status("S1", ConnectorStatus(2, 1, "Faulted", T0, "GroundFailure"))
    statuses = await repository.connector_statuses("S1")
    assert [(s.evse_id, s.status, s.error_code) for s in statuses] == [
        (1, "Charging", None),
        (2, "Faulted", "GroundFailure"),
    ]


async def test_start_is_idempotent_and_stop_keeps_signed_values_verbatim(repository: CsmRepository) -> None:
    start = StartRequest("S1", 2, "TAG", 100, T0)
    first = await repository.start_transaction(start, transactions.from_start(start))
    again = await repository.start_transaction(start, transactions.from_start(start))
    assert not first.duplicate
    assert again.duplicate
    assert again.transaction.id == first.transaction.id
    signed = 'OCMF|{"RD":[{"RV":0.35}]}|{"SD":"3045"}'
    stop = StopRequest(
        "S1",
        first.transaction.id,
        350,
        T0 + timedelta(hours=1),
        "Remote",
        samples=(MeterSample(T0 + timedelta(hours=1), signed, signed=signed),),
    )
    stopped = await repository.stop_transaction(stop, lambda tx: transactions.apply_stop(tx, stop))
    assert stopped is not None
    assert stopped.energy_wh == 250
    assert (await repository.get_transaction(first.transaction.id)) == stopped
    (sample,) = await repository.meter_values(first.transaction.id)
    assert sample.signed == signed
    assert sample.value == signed
    assert await repository.stop_transaction(replace_id(stop, 999), lambda tx: tx) is None
    assert [tx.id for tx in await repository.list_transactions(active=False)] == [first.transaction.id]
    assert await repository.list_transactions(active=True) == []


def replace_id(stop: StopRequest, transaction_id: int) -> StopRequest:
    return StopRequest(stop.station_id, transaction_id, stop.meter_stop_wh, stop.timestamp)


async def test_queued_events_arriving_late_fold_in_order_once(repository: CsmRepository) -> None:
    def ev(kind: TxEventType, seq: int, minutes: int, wh: int) -> TransactionEvent:
        at = T0 - timedelta(hours=2) + timedelta(minutes=minutes)
        sample = MeterSample(at, str(wh), transactions.ENERGY_REGISTER, unit="Wh")
        return TransactionEvent(
            "S2", "OFF-1", seq, kind, at, "Offline", 1, 1, offline=True, samples=(sample,)
        )

    events = [
        ev(TxEventType.STARTED, 0, 0, 10),
        ev(TxEventType.UPDATED, 1, 30, 2010),
        ev(TxEventType.ENDED, 2, 60, 4010),
    ]
    for e in [*events, events[1]]:
        await repository.apply_event(e, lambda tx, e=e: transactions.apply_event(tx, e))  # type: ignore[misc]
    (tx,) = await repository.list_transactions("S2")
    assert tx.energy_wh == 4000
    assert tx.started_at == T0 - timedelta(hours=2)
    assert len(await repository.meter_values(tx.id)) == 3
    assert await repository.set_charging_needs(ChargingNeeds("S2", 1, T0, 5000)) is None


async def test_a_transaction_id_reused_after_a_counter_reset_is_a_new_session(
    repository: CsmRepository,
) -> None:
    """#13 item 13: the station numbers its sessions from the start again; each keeps its own energy."""

    def ev(kind: TxEventType, seq: int, minutes: int, wh: int) -> TransactionEvent:
        at = T0 + timedelta(minutes=minutes)
        sample = MeterSample(at, str(wh), transactions.ENERGY_REGISTER, unit="Wh")
        return TransactionEvent("S3", "TX-7", seq, kind, at, "Trigger", 1, 1, samples=(sample,))

    async def send(e: TransactionEvent) -> bool:
        outcome = await repository.apply_event(e, lambda tx: transactions.apply_event(tx, e))
        return outcome.duplicate

    first = [ev(TxEventType.STARTED, 0, 0, 10), ev(TxEventType.UPDATED, 1, 30, 1010)]
    first.append(ev(TxEventType.ENDED, 2, 60, 2010))
    second = [ev(TxEventType.STARTED, 0, 120, 2010), ev(TxEventType.UPDATED, 1, 150, 3010)]
    second.append(ev(TxEventType.ENDED, 2, 180, 5010))
    assert [await send(e) for e in first] == [False] * 3
    assert await send(first[2])  # a retransmission of the end is still a duplicate
    assert [await send(e) for e in second] == [False] * 3
    assert [await send(e) for e in second] == [True] * 3  # and so is the new session's, whole
    sessions = sorted(await repository.list_transactions("S3"), key=lambda tx: tx.started_at)
    assert [(tx.external_id, tx.energy_wh, tx.active) for tx in sessions] == [
        ("TX-7", 2000, False),
        ("TX-7", 3000, False),
    ]
    assert [len(await repository.meter_values(tx.id)) for tx in sessions] == [3, 3]
    assert sessions[1].started_at == T0 + timedelta(hours=2)


async def test_charging_needs_attach_to_the_running_session(repository: CsmRepository) -> None:
    start = StartRequest("S3", 1, "TAG", 0, T0)
    outcome = await repository.start_transaction(start, transactions.from_start(start))
    updated = await repository.set_charging_needs(ChargingNeeds("S3", 1, T0 + timedelta(hours=5), 12000))
    assert updated is not None
    stored = await repository.get_transaction(outcome.transaction.id)
    assert stored is not None
    assert (stored.departure_time, stored.energy_need_wh) == (T0 + timedelta(hours=5), 12000)
    await repository.record_charging_profile("S3", 1, {"id": 1, "limit": 16.0}, "Accepted", T0)


async def test_reservations_get_ids_and_change_status_only_for_their_station(
    repository: CsmRepository,
) -> None:
    first = await repository.create_reservation(ReservationRecord(0, "S1", 1, "TAG", T0))
    second = await repository.create_reservation(ReservationRecord(0, "S1", 2, "TAG", T0))
    assert first.id != second.id
    assert first.status is ReservationStatus.REQUESTED
    assert await repository.update_reservation("OTHER", first.id, ReservationStatus.CANCELLED) is None
    accepted = await repository.update_reservation("S1", first.id, ReservationStatus.ACCEPTED, "Accepted")
    assert accepted == ReservationRecord(first.id, "S1", 1, "TAG", T0, ReservationStatus.ACCEPTED, "Accepted")
    used = await repository.update_reservation("S1", first.id, ReservationStatus.USED)
    assert used is not None
    assert (used.status, used.answer) == (ReservationStatus.USED, "Accepted")
    assert await repository.get_reservation(first.id) == used
