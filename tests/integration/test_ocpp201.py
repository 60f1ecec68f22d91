"""OCPP 2.0.1 against the server, driven by the ocpp library's charge-point side.

Test names carry the ids of the OCPP 2.0.1 part 6 test cases for a CSMS (TC_B_01_CSMS) where one applies.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v201 import call

from chargeflow.clock import SystemClock
from chargeflow.csm.model import AuthStatus, IdTokenRecord, TransactionRecord
from chargeflow.csm.ports import CsmRepository
from chargeflow.csm.service import CsmConfig
from chargeflow.protocols.ocpp.server import OcppServerConfig
from chargeflow.runtime.app import CsmNode, build_csm
from tests.integration.conftest import port_of
from tests.integration.stations import Station201, iso, open_ws, running

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def energy(at: datetime, wh: float) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": iso(at),
            "sampledValue": [
                {"value": wh, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}},
                {"value": 7200.0, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
            ],
        }
    ]


def tx_event(
    kind: str, seq: int, at: datetime, wh: float, reason: str = "MeterValuePeriodic", **extra: Any
) -> Any:
    return call.TransactionEvent(
        event_type=kind,
        timestamp=iso(at),
        trigger_reason=reason,
        seq_no=seq,
        transaction_info={"transactionId": "TX-1", **extra.pop("info", {})},
        meter_value=energy(at, wh),
        evse={"id": 1, "connectorId": 1},
        **extra,
    )


async def test_tc_b_01_csms_cold_boot_charging_station(node: CsmNode, repository: CsmRepository) -> None:
    async with open_ws(port_of(node), "CS201-1", "ocpp2.0.1") as ws:
        station = Station201("CS201-1", ws)
        async with running(station):
            boot = await station.call(
                call.BootNotification(charging_station={"model": "M2", "vendorName": "V2"}, reason="PowerUp")
            )
            assert boot.status == "Accepted"
            assert boot.current_time.endswith("Z")
            await station.call(
                call.StatusNotification(
                    timestamp=iso(T0), connector_status="Available", evse_id=1, connector_id=1
                )
            )
            await station.call(call.Heartbeat())
    stored = await repository.get_station("CS201-1")
    assert stored is not None
    assert stored.ocpp_version == "ocpp2.0.1"
    assert [s.status for s in await repository.connector_statuses("CS201-1")] == ["Available"]


async def test_tc_c_02_and_c_07_csms_authorize_accepted_invalid_expired(
    node: CsmNode, repository: CsmRepository
) -> None:
    now = datetime.now(UTC)
    await repository.put_id_token(IdTokenRecord("GOOD", AuthStatus.ACCEPTED, now + timedelta(hours=1)))
    await repository.put_id_token(IdTokenRecord("OLD", AuthStatus.ACCEPTED, now - timedelta(hours=1)))
    async with open_ws(port_of(node), "CS201-2", "ocpp2.0.1") as ws:
        station = Station201("CS201-2", ws)
        async with running(station):
            statuses = [
                (
                    await station.call(call.Authorize(id_token={"idToken": tag, "type": "ISO14443"}))
                ).id_token_info["status"]
                for tag in ("GOOD", "NOPE", "OLD")
            ]
    assert statuses == ["Accepted", "Invalid", "Expired"]


async def test_tc_e_04_csms_transaction_authorized_first_with_ev_charging_needs(
    node: CsmNode, repository: CsmRepository
) -> None:
    await repository.put_id_token(IdTokenRecord("TAG2", AuthStatus.ACCEPTED))
    departure = T0 + timedelta(hours=8)
    async with open_ws(port_of(node), "CS201-3", "ocpp2.0.1") as ws:
        station = Station201("CS201-3", ws)
        async with running(station):
            started = await station.call(
                tx_event(
                    "Started", 0, T0, 500.0, "Authorized", id_token={"idToken": "TAG2", "type": "ISO14443"}
                )
            )
            assert started.id_token_info["status"] == "Accepted"
            needs = await station.call(
                call.NotifyEVChargingNeeds(
                    evse_id=1,
                    charging_needs={
                        "requestedEnergyTransfer": "AC_three_phase",
                        "departureTime": iso(departure),
                        "acChargingParameters": {
                            "energyAmount": 20000,
                            "evMinCurrent": 6,
                            "evMaxCurrent": 16,
                            "evMaxVoltage": 400,
                        },
                    },
                )
            )
            assert needs.status == "Accepted"
            await station.call(tx_event("Updated", 1, T0 + timedelta(minutes=30), 4000.0))
            await station.call(
                tx_event(
                    "Ended",
                    2,
                    T0 + timedelta(hours=1),
                    7700.0,
                    "EVDeparted",
                    info={"stoppedReason": "EVDisconnected"},
                )
            )
    (tx,) = await repository.list_transactions()
    assert tx.external_id == "TX-1"
    assert (tx.meter_start_wh, tx.meter_stop_wh, tx.energy_wh) == (500, 7700, 7200)
    assert tx.stop_reason == "EVDisconnected"
    assert tx.departure_time == departure
    assert tx.energy_need_wh == 20000
    assert len(await repository.meter_values(tx.id)) == 6


async def test_duplicate_transaction_event_is_idempotent(node: CsmNode, repository: CsmRepository) -> None:
    async with open_ws(port_of(node), "CS201-4", "ocpp2.0.1") as ws:
        station = Station201("CS201-4", ws)
        async with running(station):
            await station.call(tx_event("Started", 0, T0, 100.0, "CablePluggedIn"))
            await station.call(tx_event("Updated", 1, T0 + timedelta(minutes=1), 900.0))
            await station.call(tx_event("Updated", 1, T0 + timedelta(minutes=1), 900.0))
    (tx,) = await repository.list_transactions()
    assert tx.energy_wh == 800
    assert len(await repository.meter_values(tx.id)) == 4


class BillingCalls:
    """Session hooks that note what billing would be asked: a tariff at each start, a CDR at each end."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.ended: list[tuple[int, int | None]] = []

    async def session_started(self, tx: TransactionRecord) -> None:
        self.started.append(tx.id)

    async def session_ended(self, tx: TransactionRecord) -> None:
        self.ended.append((tx.id, tx.energy_wh))


async def test_a_reused_transaction_id_after_a_counter_reset_is_a_new_billed_session(
    repository: CsmRepository,
) -> None:
    """#13 item 13: after a reset the station names its next session TX-1 again, seqNo from 0."""
    billing = BillingCalls()
    config = OcppServerConfig(host="127.0.0.1", port=0, call_timeout_s=1.0)
    built = build_csm(repository, SystemClock(), CsmConfig(auto_register=True), config, 1.0, billing)
    task = asyncio.create_task(built.ocpp.serve())
    await asyncio.wait_for(built.ocpp.started.wait(), 5)
    later = T0 + timedelta(hours=3)
    try:
        async with open_ws(port_of(built), "CS201-R", "ocpp2.0.1") as ws:
            station = Station201("CS201-R", ws)
            async with running(station):
                await station.call(tx_event("Started", 0, T0, 100.0, "CablePluggedIn"))
                await station.call(tx_event("Ended", 1, T0 + timedelta(hours=1), 5100.0, "EVDeparted"))
                await station.call(tx_event("Started", 0, later, 5100.0, "CablePluggedIn"))
                await station.call(tx_event("Started", 0, later, 5100.0, "CablePluggedIn"))  # again
                await station.call(tx_event("Ended", 1, later + timedelta(hours=1), 12100.0, "EVDeparted"))
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
    sessions = sorted(await repository.list_transactions("CS201-R"), key=lambda tx: tx.started_at)
    assert [(tx.started_at, tx.energy_wh, tx.active) for tx in sessions] == [
        (T0, 5000, False),
        (later, 7000, False),
    ]
    assert billing.started == [tx.id for tx in sessions]
    assert billing.ended == [(sessions[0].id, 5000), (sessions[1].id, 7000)]


async def test_smart_charging_set_profile_and_read_composite_schedule(node: CsmNode) -> None:
    async with open_ws(port_of(node), "CS201-5", "ocpp2.0.1") as ws:
        station = Station201("CS201-5", ws)
        async with running(station):
            profile, answer = await node.operations.set_charging_limit(
                "CS201-5", 1, 16.0, "A", "TxDefaultProfile", profile_id=7
            )
            assert answer == {"status": "Accepted"}
            composite = await node.operations.composite_schedule("CS201-5", 1, 3600, "A")
    assert composite["status"] == "Accepted"
    assert composite["schedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16.0}]
    assert profile["chargingProfilePurpose"] == "TxDefaultProfile"


async def test_request_start_transaction(node: CsmNode) -> None:
    async with open_ws(port_of(node), "CS201-6", "ocpp2.0.1") as ws:
        station = Station201("CS201-6", ws)
        async with running(station):
            answer = await node.operations.remote_start("CS201-6", "TAG9", 1, request_id=1)
    assert answer == {"status": "Accepted"}


async def test_reconnect_with_queued_offline_transaction_events(
    node: CsmNode, repository: CsmRepository
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    async with open_ws(port_of(node), "CS201-Q", "ocpp2.0.1") as ws:
        station = Station201("CS201-Q", ws)
        async with running(station):
            await station.call(tx_event("Started", 0, t0, 1000.0, "CablePluggedIn"))
    async with open_ws(port_of(node), "CS201-Q", "ocpp2.0.1") as ws:
        station = Station201("CS201-Q", ws)
        async with running(station):
            await station.call(tx_event("Updated", 1, t0 + timedelta(minutes=30), 3000.0, offline=True))
            await station.call(tx_event("Updated", 1, t0 + timedelta(minutes=30), 3000.0, offline=True))
            await station.call(
                tx_event(
                    "Ended",
                    2,
                    t0 + timedelta(hours=1),
                    5500.0,
                    "EVCommunicationLost",
                    offline=True,
                    info={"stoppedReason": "PowerLoss"},
                )
            )
    (tx,) = await repository.list_transactions("CS201-Q")
    assert tx.energy_wh == 4500
    assert tx.started_at == t0
    assert tx.stopped_at == t0 + timedelta(hours=1)
    assert tx.stop_reason == "PowerLoss"
    assert len(await repository.meter_values(tx.id)) == 6


async def test_ocpp21_transaction_uses_the_same_rules(node: CsmNode, repository: CsmRepository) -> None:
    t0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    async with open_ws(port_of(node), "CS21-1", "ocpp2.1") as ws:

        async def send(n: int, kind: str, minutes: int, wh: float) -> list[Any]:
            payload = {
                "eventType": kind,
                "timestamp": iso(t0 + timedelta(minutes=minutes)),
                "triggerReason": "MeterValuePeriodic",
                "seqNo": n,
                "transactionInfo": {"transactionId": "T21"},
                "evse": {"id": 1, "connectorId": 1},
                "meterValue": energy(t0 + timedelta(minutes=minutes), wh),
            }
            await ws.send(json.dumps([2, f"m{n}", "TransactionEvent", payload]))
            answer: list[Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
            return answer

        assert (await send(0, "Started", 0, 100.0))[0] == 3
        assert (await send(1, "Ended", 30, 1600.0))[0] == 3
    (tx,) = await repository.list_transactions("CS21-1")
    assert tx.energy_wh == 1500
    stored = await repository.get_station("CS21-1")
    assert stored is not None
    assert stored.ocpp_version == "ocpp2.1"


async def test_reservation_status_update_ends_the_reservation(node: CsmNode) -> None:
    reservation = await node.service.reserve("CS201-R", 1, "TAG", datetime.now(UTC) + timedelta(hours=1))
    async with open_ws(port_of(node), "CS201-R", "ocpp2.0.1") as ws:
        payload = {"reservationId": reservation.id, "reservationUpdateStatus": "Expired"}
        await ws.send(json.dumps([2, "u", "ReservationStatusUpdate", payload]))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))[:2] == [3, "u"]
    stored = await node.service.repository.get_reservation(reservation.id)
    assert stored is not None
    assert stored.status == "Expired"
