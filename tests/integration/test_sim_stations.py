"""Simulated stations (real OCPP 1.6J and 2.0.1 clients) against the real CSM server on loopback."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chargeflow.clock import ManualClock, SystemClock
from chargeflow.csm.demand import Preferences
from chargeflow.csm.model import AuthStatus, IdTokenRecord, TransactionRecord
from chargeflow.csm.ports import CsmRepository
from chargeflow.csm.service import CsmConfig
from chargeflow.protocols.ocpp.operations import MissingTransaction
from chargeflow.protocols.ocpp.server import OcppServerConfig
from chargeflow.runtime.app import CsmNode, build_csm
from chargeflow.sim.ev import EvModel
from chargeflow.sim.ocpp_client import StationError
from chargeflow.sim.profiles import Reason
from chargeflow.sim.site_runner import SiteRunner, mixed_versions
from chargeflow.sim.stations import SimulatedStation, StationOptions
from chargeflow.site.model import ChargingPoint
from chargeflow.store.memory import MemoryRepository
from tests.databases import open_repository
from tests.integration.conftest import port_of

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
EV3 = EvModel(capacity_wh=60_000, charger_phases=3, charger_max_current_a=32.0)
EV1 = EvModel(capacity_wh=40_000, charger_phases=1, charger_max_current_a=32.0)
STEP_S = 300.0


@pytest.fixture(params=["memory", "sqlite"])
async def csm(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[CsmNode, CsmRepository]]:
    """The real CSM with its OCPP endpoint on a free loopback port; auto-registration on."""
    async with open_repository(request.param, tmp_path) as repository:
        await repository.put_id_token(IdTokenRecord("DRIVER", AuthStatus.ACCEPTED))
        node = build_csm(
            repository,
            SystemClock(),
            CsmConfig(auto_register=True),
            OcppServerConfig(host="127.0.0.1", port=0, call_timeout_s=5.0),
            operation_timeout_s=5.0,
        )
        task = asyncio.create_task(node.ocpp.serve())
        await asyncio.wait_for(node.ocpp.started.wait(), 5)
        yield node, repository
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def station(
    node: CsmNode, point: ChargingPoint, version: str, clock: ManualClock, **kw: Any
) -> SimulatedStation:
    return SimulatedStation(point, version, f"ws://127.0.0.1:{port_of(node)}/{point.id}", clock, **kw)


async def charge(s: SimulatedStation, clock: ManualClock, steps: int) -> list[float]:
    """Run ``steps`` steps of five minutes, each under the limit at its start, with meter values at its end;
    the currents drawn."""
    drawn = []
    for _ in range(steps):
        start = clock.now()
        clock.advance(timedelta(seconds=STEP_S))
        drawn.append(s.advance(start, STEP_S, 20.0).current_a)
        await s.send_meter_values()
    return drawn


async def only_session(repository: CsmRepository, station_id: str) -> TransactionRecord:
    (tx,) = await repository.list_transactions(station_id)
    return tx


async def settle() -> None:
    """Let the follow-ups of an answered call (a remote start, a reset) run."""
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_stations_of_both_versions_boot_and_show_as_connected(
    csm: tuple[CsmNode, CsmRepository],
) -> None:
    node, repository = csm
    clock = ManualClock(T0)
    async with (
        station(node, ChargingPoint("S16", "c"), "1.6", clock, password="s3cret-16") as s16,
        station(node, ChargingPoint("S201", "c"), "2.0.1", clock) as s201,
    ):
        assert s16.connected
        assert s201.connected
        assert node.operations.is_connected("S16")
        assert node.operations.is_connected("S201")
        for sid, version in (("S16", "ocpp1.6"), ("S201", "ocpp2.0.1")):
            record = await repository.get_station(sid)
            assert record is not None
            assert (record.ocpp_version, record.vendor, record.serial_number) == (version, "Chargeflow", sid)
            assert [s.status for s in await repository.connector_statuses(sid)] == ["Available"]
        # Heartbeats follow the interval of the boot answer on the shared clock.
        assert not await s16.heartbeat_if_due(clock.now())
        clock.advance(timedelta(seconds=s16.heartbeat_interval_s))
        assert await s16.heartbeat_if_due(clock.now())
    assert not s16.connected
    # The password given on first connection was registered (security profile 1): a wrong one is refused.
    wrong = station(node, ChargingPoint("S16", "c"), "1.6", clock, password="nope")
    with pytest.raises(Exception, match="401"):
        await wrong.connect()


async def test_heartbeats_only_after_an_interval_without_other_messages(
    csm: tuple[CsmNode, CsmRepository],
) -> None:
    node, _ = csm
    clock = ManualClock(T0)
    async with station(node, ChargingPoint("H201", "c"), "2.0.1", clock) as s:
        assert s.heartbeat_interval_s == STEP_S
        assert await s.plug_in(EV3, 0.3, "DRIVER")
        beats = []
        for _ in range(3):  # meter values every interval keep the link busy: no heartbeat needed
            await charge(s, clock, 1)
            beats.append(await s.heartbeat_if_due(clock.now()))
        await s.unplug()
        for _ in range(2):  # idle: one heartbeat per interval
            clock.advance(timedelta(seconds=STEP_S))
            beats.append(await s.heartbeat_if_due(clock.now()))
    assert beats == [False, False, False, True, True]


async def test_v16_ev_draws_at_most_the_tx_profile_limit_and_the_energy_is_stored(
    csm: tuple[CsmNode, CsmRepository],
) -> None:
    node, repository = csm
    clock = ManualClock(T0)
    async with station(node, ChargingPoint("A16", "c", max_current_a=32.0), "1.6", clock) as s:
        assert await s.plug_in(EV3, 0.2, "DRIVER")
        assert await charge(s, clock, 2) == [32.0, 32.0]  # the station's own maximum
        tx = await only_session(repository, "A16")
        _, answer = await node.operations.set_charging_limit("A16", 1, 10.0, "A", "TxProfile", profile_id=11)
        assert answer == {"status": "Accepted"}
        assert s.present_limit(clock.now()).reason is Reason.TX
        assert await charge(s, clock, 3) == [10.0, 10.0, 10.0]
        composite = await node.operations.composite_schedule("A16", 1, 600, "A")
        assert composite["chargingSchedule"]["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": 10.0, "numberPhases": 3}
        ]
        await s.unplug()
        register = s.energy_register_wh
    stored = await repository.get_transaction(tx.id)
    assert stored is not None
    assert not stored.active
    # 2 × 5 min at 32 A and 3 × 5 min at 10 A on three phases of 230 V.
    expected = round((2 * 32 + 3 * 10) * 3 * 230 * STEP_S / 3600)
    assert stored.energy_wh == register == expected
    samples = await repository.meter_values(tx.id)
    currents = [float(x.value) for x in samples if x.measurand == "Current.Import"]
    assert {x.phase for x in samples if x.measurand == "Current.Import"} == {"L1", "L2", "L3"}
    assert currents[-3:] == [10.0, 10.0, 10.0]
    assert max(currents) <= 32.0


async def test_v201_ev_follows_a_tx_profile_and_reports_state_of_charge(
    csm: tuple[CsmNode, CsmRepository],
) -> None:
    node, repository = csm
    clock = ManualClock(T0)
    async with station(node, ChargingPoint("A201", "c", phases=3, l1_phase=2), "2.0.1", clock) as s:
        assert await s.plug_in(EV1, 0.5, "DRIVER")
        assert s.transaction is not None
        tx_id = s.transaction.id
        profile = {
            "id": 21,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "transactionId": tx_id,
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 2760.0}],
                }
            ],
        }
        answer = await node.operations.call(
            "A201", "SetChargingProfile", {"evseId": 1, "chargingProfile": profile}
        )
        assert answer == {"status": "Accepted"}
        # 2 760 W for a single-phase EV is 12 A on its one phase, which is grid phase 2 here.
        assert await charge(s, clock, 2) == [pytest.approx(12.0)] * 2
        assert tuple(round(c, 6) for c in s.grid_currents_a()) == (0.0, 12.0, 0.0)
        await s.unplug()
        register = s.energy_register_wh
    (stored,) = await repository.list_transactions("A201")
    assert stored.external_id == tx_id
    assert stored.energy_wh == register == round(2 * 2760 * STEP_S / 3600)
    samples = await repository.meter_values(stored.id)
    assert {x.phase for x in samples if x.measurand == "Current.Import"} == {"L1"}  # one phase in use
    socs = [float(x.value) for x in samples if x.measurand == "SoC"]
    assert socs[0] == 50.0
    assert socs[-1] > socs[0]


async def test_set_charging_limit_tx_profile_on_a_v201_station(csm: tuple[CsmNode, CsmRepository]) -> None:
    # OCPP 2.0.1 K01.FR.03: a TxProfile names its transaction; without one nothing is sent at all.
    node, repository = csm
    clock = ManualClock(T0)
    async with station(node, ChargingPoint("X201", "c"), "2.0.1", clock) as s:
        assert await s.plug_in(EV3, 0.5, "DRIVER")
        with pytest.raises(MissingTransaction):
            await node.operations.set_charging_limit("X201", 1, 10.0, "A", "TxProfile", profile_id=1)
        tx = await only_session(repository, "X201")
        _, answer = await node.operations.set_charging_limit(
            "X201", 1, 10.0, "A", "TxProfile", profile_id=1, transaction_id=tx.external_id
        )
    assert answer["status"] == "Accepted"


async def test_set_charging_limit_station_max_on_a_v201_station(csm: tuple[CsmNode, CsmRepository]) -> None:
    node, _ = csm
    clock = ManualClock(T0)
    async with station(node, ChargingPoint("Y201", "c"), "2.0.1", clock):
        _, answer = await node.operations.set_charging_limit(
            "Y201", 0, 16.0, "A", "ChargePointMaxProfile", profile_id=1
        )
    assert answer["status"] == "Accepted"


async def test_updating_a_limit_on_a_v201_station_replaces_the_last_one(
    csm: tuple[CsmNode, CsmRepository],
) -> None:
    # OCPP 2.0.1 K01.FR.06: a second profile of the same purpose and stack level under another id is
    # refused; the operations keep one id per purpose, so an update replaces the profile in force.
    node, _ = csm
    clock = ManualClock(T0)
    async with station(node, ChargingPoint("Z201", "c"), "2.0.1", clock) as s:
        _, first = await node.operations.set_charging_limit("Z201", 1, 16.0, "A", "TxDefaultProfile")
        assert first["status"] == "Accepted"
        _, second = await node.operations.set_charging_limit("Z201", 1, 10.0, "A", "TxDefaultProfile")
        assert second["status"] == "Accepted"
        _, other_id = await node.operations.set_charging_limit("Z201", 1, 8.0, "A", "TxDefaultProfile", 102)
        assert other_id["status"] == "Rejected"
        assert s.present_limit(clock.now()).current_a == 10.0


async def test_v201_ev_announces_departure_and_energy_need(csm: tuple[CsmNode, CsmRepository]) -> None:
    node, repository = csm
    clock = ManualClock(T0)
    wish = Preferences(needed_wh=18_000, wished_wh=30_000, departure=T0 + timedelta(hours=9))
    async with station(node, ChargingPoint("N201", "c"), "2.0.1", clock) as s:
        assert await s.plug_in(EV3, 0.3, "DRIVER", wish)
        tx = await only_session(repository, "N201")
    assert (tx.departure_time, tx.energy_need_wh) == (wish.departure, 18_000)


async def test_v16_driver_preferences_are_not_sent_and_an_unknown_token_does_not_charge(
    csm: tuple[CsmNode, CsmRepository],
) -> None:
    node, repository = csm
    clock = ManualClock(T0)
    async with station(node, ChargingPoint("U16", "c"), "1.6", clock) as s:
        assert not await s.plug_in(EV3, 0.3, "STRANGER")
        assert s.transaction is None
        assert s.plugged
        assert await charge(s, clock, 1) == [0.0]
        # A remote start authorises the EV that waits on the connector.
        answer = await node.operations.remote_start("U16", "DRIVER", 1, request_id=5)
        assert answer == {"status": "Accepted"}
        await settle()
        assert s.transaction is not None
        assert await charge(s, clock, 1) == [32.0]
        assert [x.status for x in await repository.connector_statuses("U16")] == ["Charging"]
        assert (await node.operations.remote_stop("U16", s.transaction.id)) == {"status": "Accepted"}
        await settle()
        assert s.transaction is None
        await s.unplug()
    (tx,) = await repository.list_transactions("U16")
    assert tx.id_token == "DRIVER"
    assert tx.stop_reason == "Remote"
    assert tx.energy_wh == round(32 * 3 * 230 * STEP_S / 3600)
    assert [x.status for x in await repository.connector_statuses("U16")] == ["Available"]


async def test_v201_remote_start_before_the_ev_arrives_brings_its_profile(
    csm: tuple[CsmNode, CsmRepository],
) -> None:
    node, repository = csm
    clock = ManualClock(T0)
    async with station(node, ChargingPoint("R201", "c"), "2.0.1", clock) as s:
        eight_amps = {
            "id": 5,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 8.0}],
                }
            ],
        }
        answer = await node.operations.call(
            "R201",
            "RequestStartTransaction",
            {
                "idToken": {"idToken": "DRIVER", "type": "Central"},
                "remoteStartId": 77,
                "chargingProfile": eight_amps,
            },
        )
        assert answer == {"status": "Accepted"}
        await settle()
        assert s.transaction is None  # no EV yet
        assert await s.plug_in(EV3, 0.4, "STRANGER")
        assert await charge(s, clock, 2) == [8.0, 8.0]
        assert s.limit.reason is Reason.TX
        await s.unplug()
    tx = await only_session(repository, "R201")
    assert tx.id_token == "DRIVER"
    assert tx.energy_wh == round(2 * 8 * 3 * 230 * STEP_S / 3600)


async def test_v16_tx_default_and_charge_point_max_compose(csm: tuple[CsmNode, CsmRepository]) -> None:
    node, _ = csm
    clock = ManualClock(T0)
    ops = node.operations
    async with station(node, ChargingPoint("D16", "c"), "1.6", clock) as s:
        assert (await ops.set_charging_limit("D16", 0, 16.0, "A", "TxDefaultProfile", 1))[1][
            "status"
        ] == "Accepted"
        assert (await ops.set_charging_limit("D16", 0, 10.0, "A", "ChargePointMaxProfile", 2))[1][
            "status"
        ] == "Accepted"
        assert await s.plug_in(EV3, 0.2, "DRIVER")
        assert await charge(s, clock, 1) == [10.0]  # the station maximum caps the default
        assert s.limit.reason is Reason.STATION_MAX
        assert await ops.call("D16", "ClearChargingProfile", {"id": 2}) == {"status": "Accepted"}
        assert await ops.call("D16", "ClearChargingProfile", {"id": 2}) == {"status": "Unknown"}
        assert await charge(s, clock, 1) == [16.0]  # the default alone
        assert (await ops.set_charging_limit("D16", 1, 24.0, "A", "TxProfile", 3))[1]["status"] == "Accepted"
        assert await charge(s, clock, 1) == [24.0]  # the transaction's own profile overrides the default
        in_watts = await ops.composite_schedule("D16", 1, 300, "W")
        assert in_watts["chargingSchedule"]["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": 24 * 3 * 230.0, "numberPhases": 3}
        ]
        # A limit below the 6 A the station can deliver pauses charging (IEC 61851).
        assert (await ops.set_charging_limit("D16", 1, 4.0, "A", "TxProfile", 3))[1]["status"] == "Accepted"
        assert await charge(s, clock, 1) == [0.0]
        assert s.status == "SuspendedEVSE"
        await s.unplug()
        # The TxProfile ended with its transaction; the default remains.
        assert [p.id for p in s.profiles.profiles] == [1]


async def test_v201_tx_default_and_station_max_compose(csm: tuple[CsmNode, CsmRepository]) -> None:
    node, _ = csm
    clock = ManualClock(T0)
    ops = node.operations
    async with station(node, ChargingPoint("D201", "c"), "2.0.1", clock) as s:
        assert (await ops.set_charging_limit("D201", 0, 16.0, "A", "TxDefaultProfile", 1))[1] == {
            "status": "Accepted"
        }
        station_max = {
            "id": 2,
            "stackLevel": 0,
            "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [
                {
                    "id": 1,
                    "startSchedule": "2026-11-25T08:00:00Z",
                    "duration": 3600,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 8280.0}],
                }
            ],
        }
        assert await ops.call(
            "D201", "SetChargingProfile", {"evseId": 0, "chargingProfile": station_max}
        ) == {"status": "Accepted"}
        # K01.FR.06: a second TxDefault of the same stack level on the same EVSE is refused with a reason.
        refused = await ops.call(
            "D201",
            "SetChargingProfile",
            {
                "evseId": 0,
                "chargingProfile": {**station_max, "id": 3, "chargingProfilePurpose": "TxDefaultProfile"},
            },
        )
        assert refused == {"status": "Rejected", "statusInfo": {"reasonCode": "DuplicateProfile"}}
        assert await s.plug_in(EV3, 0.2, "DRIVER")
        # 8 280 W over three phases is 12 A, below the default's 16 A, for the hour the schedule lasts.
        assert await charge(s, clock, 13) == [pytest.approx(12.0)] * 12 + [16.0]
        composite = await ops.composite_schedule("D201", 1, 600, "A")
        assert composite["schedule"]["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": 16.0, "numberPhases": 3}
        ]


async def test_configuration_variables_trigger_and_reset(csm: tuple[CsmNode, CsmRepository]) -> None:
    node, repository = csm
    clock = ManualClock(T0)
    ops = node.operations
    async with (
        station(node, ChargingPoint("C16", "c", l1_phase=3), "1.6", clock) as s16,
        station(node, ChargingPoint("C201", "c"), "2.0.1", clock) as s201,
    ):
        got = await ops.call("C16", "GetConfiguration", {"key": ["ConnectorPhaseRotation", "Nope"]})
        assert got == {
            "configurationKey": [{"key": "ConnectorPhaseRotation", "readonly": True, "value": "1.TRS"}],
            "unknownKey": ["Nope"],
        }
        assert await ops.call("C16", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}) == {
            "status": "Accepted"
        }
        assert s16.heartbeat_interval_s == 60
        assert await ops.call("C16", "ChangeConfiguration", {"key": "NumberOfConnectors", "value": "2"}) == {
            "status": "Rejected"
        }
        assert await ops.call("C16", "ChangeConfiguration", {"key": "Foo", "value": "1"}) == {
            "status": "NotSupported"
        }
        heartbeat = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        answer = await ops.call(
            "C201", "SetVariables", {"setVariableData": [{**heartbeat, "attributeValue": "90"}]}
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
        answer = await ops.call(
            "C201",
            "GetVariables",
            {"getVariableData": [heartbeat, {"component": {"name": "Nothing"}, "variable": {"name": "X"}}]},
        )
        assert [(r["attributeStatus"], r.get("attributeValue")) for r in answer["getVariableResult"]] == [
            ("Accepted", "90"),
            ("UnknownComponent", None),
        ]
        assert s201.heartbeat_interval_s == 90
        before = (await repository.get_station("C201")).last_heartbeat_at  # type: ignore[union-attr]
        assert await ops.trigger("C201", "Heartbeat", None) == {"status": "Accepted"}
        assert await ops.trigger("C16", "DiagnosticsStatusNotification", None) == {"status": "NotImplemented"}
        assert await s16.plug_in(EV3, 0.5, "DRIVER")
        assert await ops.reset("C16", hard=True) == {"status": "Accepted"}
        await settle()
        assert s16.transaction is None
        after = (await repository.get_station("C201")).last_heartbeat_at  # type: ignore[union-attr]
        assert after is not None
        assert before is not None
        assert after > before  # the triggered heartbeat reached the CSM
    (tx,) = await repository.list_transactions("C16")
    assert tx.stop_reason == "HardReset"
    record = await repository.get_station("C16")
    assert record is not None
    assert record.last_boot_at is not None


async def test_a_mixed_site_of_twenty_stations_stays_within_its_limits(
    csm: tuple[CsmNode, CsmRepository],
) -> None:
    """20 stations (1.6 and 2.0.1, one and three phases, rotated) for six simulated hours in 5-min steps."""
    node, repository = csm
    ops = node.operations
    clock = ManualClock(T0)
    points = [
        ChargingPoint(
            f"P{n:02}",
            "c",
            phases=1 if n % 4 == 0 else 3,
            l1_phase=n % 3 + 1,
            max_current_a=16.0 + 16 * (n % 2),
        )
        for n in range(20)
    ]
    rng = random.Random(7)
    arrival_step = {p.id: rng.randrange(0, 12) for p in points}
    stay_steps = {p.id: rng.randrange(24, 60) for p in points}
    evs = {
        p.id: rng.choice((EV1, EV3, EvModel(capacity_wh=77_000, charger_max_current_a=16.0))) for p in points
    }
    default_a, late_a = 10.0, 6.0
    violations: list[str] = []
    lowered: set[str] = set()

    async with SiteRunner(f"ws://127.0.0.1:{port_of(node)}", points, mixed_versions(20), clock) as site:
        assert all(node.operations.is_connected(p.id) for p in points)
        for p in points:
            _, answer = await ops.set_charging_limit(p.id, 0, default_a, "A", "TxDefaultProfile", 1)
            assert answer == {"status": "Accepted"}
        steps = 0

        async def before(now: datetime) -> None:
            nonlocal steps
            for s in site.stations:  # what the previous step drew, against the limit in force then
                if s.current_a > s.limit_a + 1e-9 or s.current_a > (late_a if s.id in lowered else default_a):
                    violations.append(f"{s.id} drew {s.current_a} A over {s.limit_a} A at step {steps}")
            for s in site.stations:
                if steps == arrival_step[s.id]:
                    prefs = Preferences(10_000, 20_000, now + timedelta(seconds=STEP_S * stay_steps[s.id]))
                    assert await s.plug_in(evs[s.id], rng.uniform(0.1, 0.7), "DRIVER", prefs)
                elif steps == arrival_step[s.id] + stay_steps[s.id] and s.plugged:
                    await s.unplug()
            if steps == 24:  # after two hours the CSM lowers the 1.6 stations that charge with a TxProfile
                for s in site.stations:
                    if s.version == "1.6" and s.transaction is not None:
                        _, answer = await ops.set_charging_limit(s.id, 1, late_a, "A", "TxProfile", 2)
                        assert answer == {"status": "Accepted"}
                        lowered.add(s.id)
            steps += 1

        reports = await site.run(clock, timedelta(hours=6), timedelta(seconds=STEP_S), before)
        for s in site.stations:
            if s.plugged:
                await s.unplug()

    assert violations == []
    assert lowered
    assert len(reports) == 72
    assert max(r.charging for r in reports) >= 15
    # Per grid phase, never more than the default limit on every station wired to that phase.
    for phase in range(3):
        on_phase = sum(1 for p in points if phase + 1 in p.grid_phases)
        assert max(r.grid_currents_a[phase] for r in reports) <= default_a * on_phase + 1e-6
    sessions = await repository.list_transactions()
    assert len(sessions) == 20
    assert all(not tx.active for tx in sessions)
    # Every Wh the stations metered is in the stored sessions (meterStop − meterStart).
    by_station = {tx.station_id: tx for tx in sessions}
    for s in site.stations:
        assert by_station[s.id].energy_wh == s.energy_register_wh - s.options.meter_start_wh
    assert sum(r.power_w for r in reports) > 0


async def test_a_station_notices_the_csm_going_away_and_closes_cleanly() -> None:
    node = build_csm(
        MemoryRepository(),
        SystemClock(),
        CsmConfig(auto_register=True),
        OcppServerConfig(host="127.0.0.1", port=0, call_timeout_s=2.0),
    )
    server = asyncio.create_task(node.ocpp.serve())
    await asyncio.wait_for(node.ocpp.started.wait(), 5)
    clock = ManualClock(T0)
    s = station(node, ChargingPoint("G16", "c"), "1.6", clock, options=StationOptions(call_timeout_s=1.0))
    await s.connect()
    assert s.connected
    server.cancel()
    with suppress(asyncio.CancelledError):
        await server
    async with asyncio.timeout(5):
        await s.wait_disconnected()
    assert not s.connected
    with pytest.raises(StationError):
        await s.heartbeat()
    async with asyncio.timeout(5):
        await s.close()
    assert not s.connected


async def test_v201_unknown_token_ends_the_transaction_and_on_idle_reset_waits_for_the_ev(
    csm: tuple[CsmNode, CsmRepository],
) -> None:
    node, repository = csm
    clock = ManualClock(T0)
    async with station(node, ChargingPoint("I201", "c"), "2.0.1", clock) as s:
        assert not await s.plug_in(EV3, 0.4, "STRANGER")
        assert await charge(s, clock, 1) == [0.0]
        await s.unplug()
        assert await s.plug_in(EV3, 0.4, "DRIVER")
        assert await node.operations.reset("I201", hard=False) == {"status": "Scheduled"}
        await settle()
        assert s.transaction is not None  # OnIdle: the transaction goes on
        booted = (await repository.get_station("I201")).last_boot_at  # type: ignore[union-attr]
        await s.unplug()
        assert not s.reset_scheduled
        rebooted = (await repository.get_station("I201")).last_boot_at  # type: ignore[union-attr]
        assert booted is not None
        assert rebooted is not None
        assert rebooted > booted
    refused, accepted = sorted(await repository.list_transactions("I201"), key=lambda tx: tx.id)
    assert (refused.id_token, refused.stop_reason, refused.energy_wh) == ("STRANGER", "DeAuthorized", 0)
    assert accepted.id_token == "DRIVER"
    assert not accepted.active


async def serve_csm(repository: CsmRepository, port: int) -> tuple[CsmNode, asyncio.Task[None]]:
    node = build_csm(
        repository,
        SystemClock(),
        CsmConfig(auto_register=True),
        OcppServerConfig(host="127.0.0.1", port=port, call_timeout_s=2.0),
    )
    task = asyncio.create_task(node.ocpp.serve())
    await asyncio.wait_for(node.ocpp.started.wait(), 5)
    return node, task


async def test_the_site_reconnects_when_the_csm_comes_back(tmp_path: Path) -> None:
    """The CSM restarts on its port: the stations are offline for a step, then report again."""
    async with open_repository("sqlite", tmp_path) as repository:
        await repository.put_id_token(IdTokenRecord("DRIVER", AuthStatus.ACCEPTED))
        first, server = await serve_csm(repository, 0)
        port = port_of(first)
        clock = ManualClock(T0)
        points = [ChargingPoint("W16", "c"), ChargingPoint("W201", "c")]
        offline = []
        async with SiteRunner(f"ws://127.0.0.1:{port}", points, ["1.6", "2.0.1"], clock) as site:
            for s in site.stations:
                assert await s.plug_in(EV3, 0.3, "DRIVER")
            for restart in (False, True, False):
                if restart:
                    server.cancel()
                    with suppress(asyncio.CancelledError):
                        await server
                    async with asyncio.timeout(5):
                        for s in site.stations:
                            await s.wait_disconnected()
                start = clock.now()
                clock.advance(timedelta(seconds=STEP_S))
                offline.append((await site.step(start, STEP_S)).offline)
                if restart:
                    _, server = await serve_csm(repository, port)
            start = clock.now()
            clock.advance(timedelta(seconds=STEP_S))
            offline.append((await site.step(start, STEP_S)).offline)
            for s in site.stations:
                await s.unplug()
            registers = {s.id: s.energy_register_wh for s in site.stations}
        server.cancel()
        with suppress(asyncio.CancelledError):
            await server
        assert offline == [0, 2, 0, 0]
        sessions = await repository.list_transactions()
        assert {tx.station_id: tx.energy_wh for tx in sessions} == registers
        assert all(not tx.active for tx in sessions)
        assert set(registers.values()) == {round(4 * 32 * 3 * 230 * STEP_S / 3600)}
