"""``serve --site`` with a SunSpec grid meter (model 203 over Modbus TCP, from pymodbus's server serving a map
built with pysunspec2): the grid meter's power register steers the site; a building step reaches the
stations' limits within a second and the grid limit holds; a meter that falls silent brings the safe limit."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from chargeflow.bench.ocpp_load import serve_process
from chargeflow.sim.drawing import VOLTAGE_V, DrawingStation, Ev, connected
from tests.integration.sunspec_peer import SunSpecPeer, model

GRID_W = 40_000.0
VERSIONS = {"s1": "1.6", "s2": "2.0.1", "s3": "1.6", "s4": "2.0.1", "s5": "1.6", "s6": "2.0.1"}
# the safe share by hand: (38.8 kW - 20 kW) / (6 × 3 × 230 V) = 4.54 A, below 6 A: 0 A
SAFE_A = 0.0


def _site(port: int) -> str:
    points = "\n".join(f"  - {{id: {sid}, circuit: main, max_current_a: 16}}" for sid in VERSIONS)
    return f"""
id: sunspec-metered
timezone: Europe/Vienna
grid: {{max_import_w: {GRID_W:.0f}, max_export_w: 10000}}
circuits:
  - {{id: main, parent: null, max_current_a: 80}}
charging_points:
{points}
building: {{circuit: main, peak_w: 20000}}
meters:
  - {{id: grid, role: grid, adapter: sunspec, host: 127.0.0.1, port: {port}, interval_s: 0.25,
     stale_after_s: 3}}
"""


def _draw_w(stations: list[DrawingStation], ev: Ev) -> float:
    return sum(s.state.drawn_a * ev.phases * VOLTAGE_V for s in stations)


async def test_a_sunspec_grid_meter_steers_the_site(tmp_path: Path) -> None:
    # W in 10 W steps (W_SF = 1): 40 kW does not fit an int16 in watts
    peer = SunSpecPeer([model(1, Mn="Chargeflow tests", Md="grid meter"), model(203, W_SF=1, W_c=8000)])
    site_file = tmp_path / "site.yaml"
    site_file.write_text(_site(peer.port))
    ev = Ev(max_a=16.0)
    building = [8_000.0]
    db = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    await peer.start()
    try:
        async with (
            serve_process(
                db, "sunspec-token-0123456789abcdef", "--site", str(site_file), "--step", "5"
            ) as server,
            contextlib.AsyncExitStack() as stack,
        ):
            stations = [
                await stack.enter_async_context(connected(server.ocpp_port, sid, v))
                for sid, v in VERSIONS.items()
            ]

            async def meter() -> None:  # the grid: the building plus what the stations draw
                while True:
                    power = building[0] + _draw_w(stations, ev)
                    peer.update(203, W_c=round(power, -1))
                    await asyncio.sleep(0.1)

            async def draw() -> None:
                while True:
                    await asyncio.gather(*(s.report(ev, 0.5) for s in stations))
                    await asyncio.sleep(0.5)

            tasks = [asyncio.create_task(meter()), asyncio.create_task(draw())]
            try:
                deadline = time.monotonic() + 10
                while not all(s.state.profiles for s in stations):
                    assert time.monotonic() < deadline, "no safe limit before the sessions"
                    await asyncio.sleep(0.1)
                for i, s in enumerate(stations):
                    await s.start_session(f"t{i}")
                # the grant: 38.8 kW less the building's 8 kW for the EVs, far above the safe 0 A
                deadline = time.monotonic() + 15
                while _draw_w(stations, ev) < 25_000:
                    assert time.monotonic() < deadline, "the grant never came"
                    await asyncio.sleep(0.2)
                # +10 kW in the building, seen only in the meter's W register: the limits drop at once
                building[0] = 18_000.0
                stepped = time.monotonic()
                while _draw_w(stations, ev) + building[0] > GRID_W * 0.99:
                    assert time.monotonic() - stepped < 3, "the building step did not reach the stations"
                    await asyncio.sleep(0.05)
                reaction_s = time.monotonic() - stepped
                assert reaction_s < 1.5, reaction_s
                peaks = []
                for _ in range(4):
                    await asyncio.sleep(0.5)
                    peaks.append(_draw_w(stations, ev) + building[0])
                assert max(peaks) <= GRID_W, peaks
                # the meter falls silent: after its 3 s and the next step (5 s), all at the safe limit
                peer.behaviour = "silent"
                silent = time.monotonic()
                while any(s.state.allowed_a() > SAFE_A for s in stations):
                    assert time.monotonic() - silent < 12, "the silent meter did not bring the safe limit"
                    await asyncio.sleep(0.2)
                peer.behaviour = "ok"  # back: the grant returns with the meter's readings
                back = time.monotonic()
                while _draw_w(stations, ev) < 10_000:
                    assert time.monotonic() - back < 10, "the grant did not come back with the meter"
                    await asyncio.sleep(0.2)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await peer.stop()


def _battery_site(grid_port: int, battery_port: int) -> str:
    return f"""
id: sunspec-battery
timezone: Europe/Vienna
grid: {{max_import_w: {GRID_W:.0f}, max_export_w: 10000}}
circuits:
  - {{id: main, parent: null, max_current_a: 80}}
charging_points:
  - {{id: b1, circuit: main, max_current_a: 16}}
ess: {{capacity_wh: 20000, max_charge_w: 10000, max_discharge_w: 10000}}
meters:
  - {{id: grid, role: grid, adapter: sunspec, host: 127.0.0.1, port: {grid_port}, interval_s: 0.25}}
  - {{id: battery, role: battery, adapter: sunspec, host: 127.0.0.1, port: {battery_port}, interval_s: 0.25}}
"""


async def test_the_ems_sets_a_sunspec_battery_to_store_the_export(tmp_path: Path) -> None:
    # 5 kW go to the grid; the battery (124 basic storage behind a battery inverter, half full) is to
    # take them
    grid = SunSpecPeer([model(1, Mn="Chargeflow tests", Md="grid meter"), model(203, W_SF=0, W_c=-5000)])
    storage = model(
        124,
        WChaMax_SF=0,
        WChaMax_c=10000,
        ChaState_SF=0,
        ChaState_c=50,
        InOutWRte_SF=-2,
        OutWRte=0,
        InWRte=0,
        StorCtl_Mod=0,
        InOutWRte_RvrtTms=0,
    )
    inverter = model(103, W_SF=0, W_c=0)
    battery = SunSpecPeer([model(1, Mn="Chargeflow tests", Md="battery"), inverter, storage])
    site_file = tmp_path / "site.yaml"
    site_file.write_text(_battery_site(grid.port, battery.port))
    db = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    await grid.start()
    await battery.start()
    try:
        async with serve_process(
            db, "sunspec-token-0123456789abcdef", "--site", str(site_file), "--step", "2"
        ):
            deadline = time.monotonic() + 15
            while (battery.read_back(124).InWRte.cvalue or 0) <= 0:  # a step before the readings: 0
                assert time.monotonic() < deadline, "the EMS never set the battery"
                await asyncio.sleep(0.2)
            written = battery.read_back(124)
            assert written.StorCtl_Mod.value == 3
            # a charge of the 5 kW export (less the EMS's 3 % margin: 4.85 kW) in % of WChaMax, as the
            # most it may take (InWRte) and, forced, the least (OutWRte negative)
            assert written.InWRte.cvalue == pytest.approx(48.5)
            assert written.OutWRte.cvalue == pytest.approx(-48.5)
            assert written.InOutWRte_RvrtTms.value == 60
    finally:
        await battery.stop()
        await grid.stop()
