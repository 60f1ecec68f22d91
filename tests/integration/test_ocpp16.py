"""OCPP 1.6J against the server, driven by the ocpp library's charge-point side.

Test names carry the ids of the OCPP 1.6 compliance test cases for a Central System (TC_xxx_CSMS)
where one applies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ocpp.v16 import call

from chargeflow.csm.model import AuthStatus, IdTokenRecord
from chargeflow.csm.ports import CsmRepository
from chargeflow.runtime.app import CsmNode
from tests.integration.conftest import port_of
from tests.integration.stations import Station16, iso, open_ws, running

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


async def test_tc_001_csms_cold_boot_charge_point(node: CsmNode, repository: CsmRepository) -> None:
    async with open_ws(port_of(node), "CP16-1", "ocpp1.6") as ws:
        assert ws.subprotocol == "ocpp1.6"
        station = Station16("CP16-1", ws)
        async with running(station):
            answer = await station.call(
                call.BootNotification(charge_point_model="M1", charge_point_vendor="V1")
            )
            assert answer.status == "Accepted"
            assert answer.current_time.endswith("Z")
            assert answer.interval == 300
            await station.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
            )
            beat = await station.call(call.Heartbeat())
            assert beat.current_time.endswith("Z")
    stored = await repository.get_station("CP16-1")
    assert stored is not None
    assert (stored.vendor, stored.model, stored.ocpp_version) == ("V1", "M1", "ocpp1.6")
    assert [s.status for s in await repository.connector_statuses("CP16-1")] == ["Available"]


async def test_tc_023_csms_authorize_accepted_invalid_expired_blocked(
    node: CsmNode, repository: CsmRepository
) -> None:
    now = datetime.now(UTC)
    await repository.put_id_token(IdTokenRecord("GOOD", AuthStatus.ACCEPTED, now + timedelta(days=1)))
    await repository.put_id_token(IdTokenRecord("OLD", AuthStatus.ACCEPTED, now - timedelta(days=1)))
    await repository.put_id_token(IdTokenRecord("BAD", AuthStatus.BLOCKED))
    async with open_ws(port_of(node), "CP16-2", "ocpp1.6") as ws:
        station = Station16("CP16-2", ws)
        async with running(station):
            statuses = [
                (await station.call(call.Authorize(id_tag=tag))).id_tag_info["status"]
                for tag in ("GOOD", "NOPE", "OLD", "BAD")
            ]
    assert statuses == ["Accepted", "Invalid", "Expired", "Blocked"]


async def test_tc_003_csms_regular_charging_session_with_meter_values(
    node: CsmNode, repository: CsmRepository
) -> None:
    await repository.put_id_token(IdTokenRecord("TAG1", AuthStatus.ACCEPTED))
    async with open_ws(port_of(node), "CP16-3", "ocpp1.6") as ws:
        station = Station16("CP16-3", ws)
        async with running(station):
            await station.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            started = await station.call(
                call.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=iso(T0))
            )
            assert started.id_tag_info["status"] == "Accepted"
            tx_id = started.transaction_id
            for minute, wh in ((5, 2000), (10, 3500)):
                await station.call(
                    call.MeterValues(
                        connector_id=1,
                        transaction_id=tx_id,
                        meter_value=[
                            {
                                "timestamp": iso(T0 + timedelta(minutes=minute)),
                                "sampledValue": [
                                    {
                                        "value": str(wh),
                                        "measurand": "Energy.Active.Import.Register",
                                        "unit": "Wh",
                                    },
                                    {
                                        "value": "16.1",
                                        "measurand": "Current.Import",
                                        "phase": "L1",
                                        "unit": "A",
                                    },
                                ],
                            }
                        ],
                    )
                )
            stopped = await station.call(
                call.StopTransaction(
                    meter_stop=4200,
                    timestamp=iso(T0 + timedelta(minutes=15)),
                    transaction_id=tx_id,
                    reason="EVDisconnected",
                    id_tag="TAG1",
                )
            )
            assert stopped.id_tag_info["status"] == "Accepted"
    tx = await repository.get_transaction(tx_id)
    assert tx is not None
    assert tx.energy_wh == 4200 - 1000
    assert tx.stop_reason == "EVDisconnected"
    assert not tx.active
    measurands = sorted({s.measurand for s in await repository.meter_values(tx_id)})
    assert measurands == ["Current.Import", "Energy.Active.Import.Register"]


async def test_duplicate_start_transaction_is_answered_idempotently(
    node: CsmNode, repository: CsmRepository
) -> None:
    async with open_ws(port_of(node), "CP16-4", "ocpp1.6") as ws:
        station = Station16("CP16-4", ws)
        async with running(station):
            request = call.StartTransaction(connector_id=1, id_tag="X", meter_start=7, timestamp=iso(T0))
            first = await station.call(request)
            again = await station.call(request)
    assert first.transaction_id == again.transaction_id
    assert len(await repository.list_transactions("CP16-4")) == 1


async def test_tc_056_csms_central_smart_charging_txdefault_and_composite_schedule(node: CsmNode) -> None:
    async with open_ws(port_of(node), "CP16-5", "ocpp1.6") as ws:
        station = Station16("CP16-5", ws)
        async with running(station):
            _, answer = await node.operations.set_charging_limit(
                "CP16-5", 1, 10.0, "A", "TxDefaultProfile", profile_id=3
            )
            composite = await node.operations.composite_schedule("CP16-5", 1, 600, "A")
    assert answer == {"status": "Accepted"}
    assert composite["status"] == "Accepted"
    assert composite["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 10.0}]
    assert station.profiles[0]["charging_profile_purpose"] == "TxDefaultProfile"


async def test_tc_010_csms_remote_start_charging_session(node: CsmNode) -> None:
    async with open_ws(port_of(node), "CP16-6", "ocpp1.6") as ws:
        station = Station16("CP16-6", ws)
        async with running(station):
            answer = await node.operations.remote_start("CP16-6", "RTAG", 1, request_id=1)
    assert answer == {"status": "Accepted"}
    assert station.remote_starts == ["RTAG"]


async def test_reconnect_with_queued_transactions_accepted_in_order(
    node: CsmNode, repository: CsmRepository
) -> None:
    """The station loses its link mid-session; on reconnect it sends what it queued, with past times."""
    t0 = datetime.now(UTC) - timedelta(hours=3)
    start_a = call.StartTransaction(connector_id=1, id_tag="A", meter_start=100, timestamp=iso(t0))
    async with open_ws(port_of(node), "CP16-Q", "ocpp1.6") as ws:
        station = Station16("CP16-Q", ws)
        async with running(station):
            tx_a = (await station.call(start_a)).transaction_id
    async with open_ws(port_of(node), "CP16-Q", "ocpp1.6") as ws:
        station = Station16("CP16-Q", ws)
        async with running(station):
            # The answer to the first start may have been lost: the station sends it again.
            assert (await station.call(start_a)).transaction_id == tx_a
            tx_b = (
                await station.call(
                    call.StartTransaction(
                        connector_id=2, id_tag="B", meter_start=0, timestamp=iso(t0 + timedelta(minutes=5))
                    )
                )
            ).transaction_id
            await station.call(
                call.StopTransaction(
                    meter_stop=1100,
                    timestamp=iso(t0 + timedelta(hours=1)),
                    transaction_id=tx_a,
                    reason="Local",
                )
            )
            await station.call(
                call.StopTransaction(
                    meter_stop=700, timestamp=iso(t0 + timedelta(hours=2)), transaction_id=tx_b
                )
            )
            await station.call(call.Heartbeat())
    sessions = {tx.id: tx for tx in await repository.list_transactions("CP16-Q")}
    assert sorted(sessions) == sorted({tx_a, tx_b})
    assert (sessions[tx_a].energy_wh, sessions[tx_b].energy_wh) == (1000, 700)
    assert sessions[tx_a].stopped_at == t0.replace(microsecond=0) + timedelta(hours=1)
    assert all(not tx.active for tx in sessions.values())
