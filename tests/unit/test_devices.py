"""The devices' pure rules: JSON paths, units and signs, plausibility, the building from a grid meter
(eq. 1.2.5.1), and the site file's ``meters:``; the site meter's stale and implausible readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chargeflow.clock import ManualClock
from chargeflow.devices.base import Readings
from chargeflow.devices.reading import Reading, building_from, implausible, json_path, read_power
from chargeflow.devices.site_meter import DevicesMeter, StaleReading
from chargeflow.site.circuit_loads import CircuitReading
from chargeflow.site.config import ConfigError, MeterConfig, parse_meters, parse_site

SITE = {
    "grid": {"max_import_w": 40000, "max_export_w": 10000},
    "circuits": [{"id": "main", "parent": None, "max_current_a": 63}],
}
T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def test_json_paths_of_the_devices_people_have() -> None:
    assert json_path({"ENERGY": {"Power": 1234}}, "$.ENERGY.Power") == 1234  # Tasmota SENSOR
    assert json_path({"em:0": {"total_act_power": 5.5}}, "$.em:0.total_act_power") == 5.5  # Shelly Pro 3EM
    assert json_path({"values": [1, 2, 3]}, "$.values[2]") == 3
    with pytest.raises(KeyError, match="Power"):
        json_path({"ENERGY": {}}, "$.ENERGY.Power")
    with pytest.raises(ValueError, match=r"starts with \$"):
        json_path({}, "ENERGY.Power")


def test_units_signs_and_numbers() -> None:
    assert read_power({"p": 2.5}, "$.p", "kW", 1) == 2500.0
    assert read_power({"p": "1200"}, "$.p", "W", -1) == -1200.0
    for bad in ("NaN", None, True, "x"):
        with pytest.raises(ValueError, match=r"not (a number|finite)"):
            read_power({"p": bad}, "$.p", "W", 1)


def test_implausible_readings() -> None:
    assert implausible(59_000.0, "grid", 40_000.0) is None
    assert "past 1.5" in (implausible(61_000.0, "grid", 40_000.0) or "")
    assert "building" in (implausible(-500.0, "building", 40_000.0) or "")
    assert implausible(-20.0, "pv", 40_000.0) is None  # an inverter's standby draw
    assert implausible(float("nan"), "grid", 40_000.0) == "not a number"


def test_the_building_from_a_grid_meter_by_eq_1_2_5_1() -> None:
    # grid 20 kW import, EVs 11 kW, PV 5 kW, no battery: the building consumes 14 kW, generates 5 kW
    b = building_from(20_000.0, None, 5_000.0, 11_000.0, 0.0)
    assert (b.consumption_w, b.generation_w) == (14_000.0, 5_000.0)
    # a discharging battery's 3 kW were consumed too
    assert building_from(20_000.0, None, 0.0, 11_000.0, 3_000.0).consumption_w == 12_000.0
    # its own meter wins
    assert building_from(20_000.0, 7_000.0, 0.0, 11_000.0, 0.0).consumption_w == 7_000.0


def test_the_site_files_meters_and_their_errors() -> None:
    meters = [{"id": "grid", "role": "grid", "adapter": "mqtt", "topic": "t", "power": "$.p"}]
    config = parse_meters({**SITE, "meters": meters, "mqtt": {"host": "broker", "port": 1884}})
    assert config.broker.host == "broker"
    assert config.meters[0].stale_after_s == 30.0
    parse_site({**SITE, "meters": meters})  # the site file with meters is still a site file
    with pytest.raises(ConfigError, match=r"meters\[0\]: .*needs its topic"):
        parse_meters({**SITE, "meters": [{"id": "g", "role": "grid", "adapter": "mqtt", "power": "$.p"}]})
    with pytest.raises(ConfigError, match="unknown circuit"):
        parse_meters({**SITE, "meters": [{**meters[0], "role": "circuit", "circuit": "nowhere"}]})
    with pytest.raises(ConfigError, match="one meter per role"):
        parse_meters({**SITE, "meters": [meters[0], {**meters[0], "id": "grid2"}]})


class _Device:
    def __init__(self, config: MeterConfig, reading: Reading | None) -> None:
        self.config = config
        self.latest = reading
        self.error: str | None = None

    async def run(self) -> None:  # pragma: no cover - the site meter never runs its devices
        raise NotImplementedError


async def test_the_site_meter_uses_fresh_plausible_readings_only() -> None:
    site = parse_site(SITE)
    clock = ManualClock(T0)
    grid = MeterConfig(id="grid", role="grid", adapter="mqtt", topic="t", power="$.p", stale_after_s=5)
    device = _Device(grid, Reading(T0, 30_000.0))
    meter = DevicesMeter(site, [device], clock, lambda: 10_000.0)
    m = await meter.read()
    assert m.at == T0
    assert m.building.consumption_w == 20_000.0
    assert m.ev_w == 10_000.0
    clock.advance(timedelta(seconds=6))
    with pytest.raises(StaleReading, match="6 s old"):
        await meter.read()
    device.latest = Reading(clock.now(), 90_000.0)
    with pytest.raises(StaleReading, match=r"past 1\.5"):
        await meter.read()
    assert [s.used for s in meter.status()] == [False]


async def test_circuit_meters_pass_on_their_readings_and_an_unusable_one_without_its_power() -> None:
    site = parse_site(
        {
            **SITE,
            "circuits": [
                {"id": "main", "parent": None, "max_current_a": 63},
                {"id": "garage", "parent": "main", "max_current_a": 32},
            ],
        }
    )
    clock = ManualClock(T0)
    grid = MeterConfig(id="grid", role="grid", adapter="mqtt", topic="g", power="$.p", stale_after_s=50)
    paths = ["$.a[0]", "$.a[1]", "$.a[2]"]
    config = MeterConfig(
        id="hp", role="circuit", circuit="garage", adapter="mqtt", topic="c", power="$.p", currents=paths
    )
    readings = Readings(config, clock, None)
    readings.take('{"p": 3680, "a": [16, 0.2, "0.1"]}')
    assert readings.latest == Reading(T0, 3680.0, None, (16.0, 0.2, 0.1))
    circuit = _Device(config, readings.latest)
    meter = DevicesMeter(site, [_Device(grid, Reading(T0, 10_000.0)), circuit], clock, lambda: 0.0)
    assert (await meter.read()).circuits == (CircuitReading("garage", 3680.0, (16.0, 0.2, 0.1)),)
    circuit.latest = Reading(T0, 3680.0, None, (60.0, 0.0, 0.0))  # over its 32 A fuse: to act on
    assert (await meter.read()).circuits[0].power_w == 3680.0
    circuit.latest = Reading(T0, 3680.0, None, (100.0, 0.0, 0.0))  # past 1.5 × the 63 A main fuse
    assert (await meter.read()).circuits == (CircuitReading("garage", None),)
    assert [s.reason for s in meter.status()][1] == "100.0 A on L1 is past 1.5 × the 63 A fuse"
    circuit.latest = Reading(T0, 3680.0)
    clock.advance(timedelta(seconds=31))  # the circuit meter's 30 s are past, the grid meter's 50 s not
    assert (await meter.read()).circuits == (CircuitReading("garage", None),)
