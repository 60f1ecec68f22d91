"""The whole loop over real protocols: stations speak OCPP over websockets (the ``ocpp`` library's
charge-point side), the CSM publishes its demand, the EMS grants — in memory, or across the local
Mosquitto broker as a separate actor would — and the limits arrive at the stations as charging profiles.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from chargeflow.clock import ManualClock
from chargeflow.csm.service import CsmConfig
from chargeflow.csm.smart_charging import SmartChargingConfig
from chargeflow.ems.service import EmsConfig
from chargeflow.exchange import ExchangeBus, InMemoryExchange
from chargeflow.protocols.mqtt.exchange import MqttExchange, MqttSettings
from chargeflow.protocols.ocpp.server import OcppServerConfig
from chargeflow.runtime.control import SiteControl, build_site_control
from chargeflow.site.measurement import BuildingPower, EssState, SiteMeasurement
from chargeflow.site.model import ChargingPoint, Circuit, GridConnection, Site
from chargeflow.site.tree import building_loads_a, check_site
from chargeflow.store.memory import MemoryRepository
from tests.integration.stations import Station16, Station201, iso, open_ws, running

# Two stations on a garage circuit of 32 A per phase; the building draws on the main circuit.
SITE = Site(
    id="e2e",
    grid=GridConnection(30_000, 10_000),
    circuits=(Circuit("main", None, (63.0, 63.0, 63.0)), Circuit("garage", "main", (32.0, 32.0, 32.0))),
    charging_points=(
        ChargingPoint("cp16", "garage", 3, 1, 32.0),
        ChargingPoint("cp201", "garage", 3, 2, 32.0),
    ),
    building_circuit="main",
)


@dataclass
class Meter:
    clock: ManualClock
    consumption_w: float = 5_000.0
    frozen_at: datetime | None = None  # a meter that stopped reporting

    async def read(self) -> SiteMeasurement:
        return SiteMeasurement(
            self.frozen_at or self.clock.now(), BuildingPower(self.consumption_w), EssState(0)
        )


@dataclass
class Rig:
    control: SiteControl
    clock: ManualClock
    meter: Meter
    cp16: Station16
    cp201: Station201
    port: int

    def limit(self, station: Station16 | Station201) -> float:
        """The limit of the last TxProfile the station was sent."""
        for profile in reversed(station.profiles):
            purpose = profile.get("charging_profile_purpose")
            if purpose == "TxProfile":
                schedule = profile["charging_schedule"]
                schedule = schedule[0] if isinstance(schedule, list) else schedule
                return float(schedule["charging_schedule_period"][0]["limit"])
        raise AssertionError(f"no TxProfile in {station.profiles}")

    async def step(self) -> None:
        await self.control.step()
        self.clock.advance(timedelta(seconds=10))


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    use_mqtt = getattr(request, "param", "memory") == "mqtt"
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    meter = Meter(clock)
    async with AsyncExitStack() as stack:
        csm_bus: ExchangeBus
        ems_bus: ExchangeBus
        if use_mqtt:
            settings = MqttSettings(prefix=f"chargeflow-test-{uuid.uuid4().hex[:8]}")
            try:
                csm_bus = await stack.enter_async_context(MqttExchange.connect(settings, SITE.id))
                ems_bus = await stack.enter_async_context(MqttExchange.connect(settings, SITE.id))
            except (aiomqtt.MqttError, OSError) as err:
                pytest.skip(f"no MQTT broker on 127.0.0.1:1883 ({err})")
        else:
            csm_bus = ems_bus = InMemoryExchange()
        control = build_site_control(
            SITE,
            MemoryRepository(),
            clock,
            csm_bus,
            ems_bus,
            meter,
            CsmConfig(auto_register=True),
            OcppServerConfig(host="127.0.0.1", port=0, call_timeout_s=3.0),
            SmartChargingConfig(step_s=10, safe_current_a=6.0, margin_pct=0.0),
            EmsConfig(step_s=10, margin_pct=0.0),
        )
        if use_mqtt:
            control = _mqtt_paced(control, csm_bus, ems_bus)
        server = asyncio.create_task(control.node.ocpp.serve())
        stack.callback(server.cancel)
        await asyncio.wait_for(control.node.ocpp.started.wait(), 5)
        port = control.node.ocpp.port
        assert port is not None
        ws16 = await stack.enter_async_context(open_ws(port, "cp16", "ocpp1.6"))
        ws201 = await stack.enter_async_context(open_ws(port, "cp201", "ocpp2.0.1"))
        cp16, cp201 = Station16("cp16", ws16), Station201("cp201", ws201)
        await stack.enter_async_context(running(cp16))
        await stack.enter_async_context(running(cp201))
        await cp16.call(call16.BootNotification(charge_point_model="Sim", charge_point_vendor="Chargeflow"))
        await cp201.call(
            call201.BootNotification(
                charging_station={"model": "Sim", "vendor_name": "Chargeflow"}, reason="PowerUp"
            )
        )
        yield Rig(control, clock, meter, cp16, cp201, port)
        server.cancel()
        with suppress(asyncio.CancelledError):
            await server


def _mqtt_paced(control: SiteControl, csm_bus: Any, ems_bus: Any) -> SiteControl:
    """Across MQTT each message takes a hop through the broker: wait for it before the next actor acts."""

    class Paced(SiteControl):
        async def step(self) -> None:
            before = csm_bus.latest_grant(SITE.id)
            await self.charging.publish_demand()
            await _until(lambda: ems_bus.latest_demand(SITE.id) is not None and ems_bus.received > 0)
            assert self.ems is not None
            await self.ems.step()
            await _until(lambda: csm_bus.latest_grant(SITE.id) is not before)
            await self.charging.apply()

    return Paced(control.node, control.charging, control.ems, control.repository)


async def _until(condition: Any, timeout_s: float = 5.0) -> None:
    """Poll a condition for at most ``timeout_s``; the broker's hop takes milliseconds on loopback."""
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {timeout_s} s")


async def start_both(rig: Rig) -> None:
    now = iso(rig.clock.now())
    await rig.cp16.call(call16.StartTransaction(connector_id=1, id_tag="tag1", meter_start=0, timestamp=now))
    await rig.cp201.call(
        call201.TransactionEvent(
            event_type="Started",
            timestamp=now,
            trigger_reason="CablePluggedIn",
            seq_no=0,
            transaction_info={"transaction_id": "t-201"},
            evse={"id": 1, "connector_id": 1},
            id_token={"id_token": "tag2", "type": "ISO14443"},
        )
    )


def garage_phase_load(rig: Rig) -> list[float]:
    """Current on each phase of the garage from the limits the stations hold (both three-phase)."""
    return [rig.limit(rig.cp16) + rig.limit(rig.cp201)] * 3


@pytest.mark.parametrize("rig", ["memory", "mqtt"], indirect=True)
async def test_a_step_change_of_building_load_reaches_the_stations_within_one_step(rig: Rig) -> None:
    await start_both(rig)
    await rig.step()
    # 30 kW − 5 kW of building: 25 kW for two three-phase EVs, but the garage's 32 A per phase binds first.
    assert rig.limit(rig.cp16) + rig.limit(rig.cp201) == pytest.approx(32.0, abs=0.2)
    rig.meter.consumption_w = 20_000.0  # the building jumps: 10 kW are left
    await rig.step()
    total_w = (rig.limit(rig.cp16) + rig.limit(rig.cp201)) * 3 * 230
    assert total_w <= 10_000 + 1e-6
    assert total_w > 9_000
    fuses = check_site(SITE).fuse_limits()
    main = building_loads_a(SITE, check_site(SITE), 20_000)[:3]
    for p, garage_a in enumerate(garage_phase_load(rig)):
        assert garage_a <= fuses[3 + p]
        assert garage_a + main[p] <= fuses[p]


async def test_stale_meter_brings_the_safe_limit(rig: Rig) -> None:
    await start_both(rig)
    await rig.step()
    assert rig.limit(rig.cp16) > 6.0
    rig.meter.frozen_at = rig.clock.now()
    for _ in range(6):
        await rig.step()
    assert rig.limit(rig.cp16) == 6.0
    assert rig.limit(rig.cp201) == 6.0
    last = rig.control.charging.last
    assert last is not None
    assert last.fallback is not None


async def test_every_station_holds_a_safe_default_profile(rig: Rig) -> None:
    await rig.step()
    for station in (rig.cp16, rig.cp201):
        defaults = [p for p in station.profiles if p.get("charging_profile_purpose") == "TxDefaultProfile"]
        assert defaults, station.profiles
