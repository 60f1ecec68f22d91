"""Limits in the unit the station takes: A where it can, W where it takes power only."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16

from chargeflow.protocols.ocpp.control import OcppStationControl
from chargeflow.runtime.app import CsmNode
from tests.integration.conftest import port_of
from tests.integration.stations import Station16, open_ws, running


class PowerOnly16(Station16):
    """A 1.6 station whose schedules take W only (ChargingScheduleAllowedChargingRateUnit = Power)."""

    def __init__(self, station_id: str, connection: Any, allowed: str) -> None:
        super().__init__(station_id, connection)
        self.allowed = allowed
        self.asked = 0

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        self.asked += 1
        return result16.GetConfiguration(
            configuration_key=[
                {"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True, "value": self.allowed}
            ]
        )


async def limit_sent(node: CsmNode, allowed: str) -> tuple[dict[str, Any], int]:
    async with open_ws(port_of(node), f"u-{allowed}", "ocpp1.6") as ws:
        station = PowerOnly16(f"u-{allowed}", ws, allowed)
        async with running(station):
            await station.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            control = OcppStationControl(node.operations)
            for _ in range(2):
                assert await control.set_limit(f"u-{allowed}", 1, 10.0, "TxDefaultProfile", power_w=6_900.0)
            schedule = station.profiles[-1]["charging_schedule"]
            return schedule, station.asked


async def test_a_station_that_takes_power_only_gets_watts(node: CsmNode) -> None:
    schedule, asked = await limit_sent(node, "Power")
    assert schedule["charging_rate_unit"] == "W"
    assert float(schedule["charging_schedule_period"][0]["limit"]) == 6_900.0
    assert asked == 1  # asked once, then remembered


async def test_a_station_that_takes_current_gets_amperes(node: CsmNode) -> None:
    schedule, _ = await limit_sent(node, "Current,Power")
    assert schedule["charging_rate_unit"] == "A"
    assert float(schedule["charging_schedule_period"][0]["limit"]) == 10.0


class SaysNothingTakesWatts16(Station16):
    """A 1.6 station that does not answer the unit question and refuses every limit in A."""

    @on("SetChargingProfile")
    def on_set_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        if cs_charging_profiles["charging_schedule"]["charging_rate_unit"] != "W":
            return result16.SetChargingProfile(status="Rejected")
        self.profiles.append(cs_charging_profiles)
        return result16.SetChargingProfile(status="Accepted")


async def test_a_station_that_refuses_amperes_gets_watts_and_keeps_them(node: CsmNode) -> None:
    async with open_ws(port_of(node), "u-w", "ocpp1.6") as ws:
        station = SaysNothingTakesWatts16("u-w", ws)
        async with running(station):
            await station.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            control = OcppStationControl(node.operations)
            assert await control.set_limit("u-w", 1, 10.0, "TxDefaultProfile", power_w=6_900.0)
            assert await control.rate_unit("u-w") == "W"  # remembered: the next limit goes in W at once
            assert await control.set_limit("u-w", 1, 8.0, "TxDefaultProfile", power_w=5_520.0)
            assert [
                float(p["charging_schedule"]["charging_schedule_period"][0]["limit"])
                for p in station.profiles
            ] == [
                6_900.0,
                5_520.0,
            ]
            # without a power to fall back on, a refused limit in A stays refused
            assert not await control.set_limit("u-w", 1, 8.0, "TxDefaultProfile")
