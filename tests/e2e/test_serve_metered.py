"""``serve --site`` with a grid meter over MQTT (the local Mosquitto): the building is derived from the
grid meter and the stations' draw (eq. 1.2.5.1); a building step reaches every station's limit well within
a second and the grid limit holds; a silent meter brings every station to its safe limit, and the grant
comes back with the meter."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from pathlib import Path

import aiomqtt
import pytest

from chargeflow.bench.ocpp_load import serve_process
from chargeflow.sim.drawing import VOLTAGE_V, DrawingStation, Ev, connected
from tests.waiting import mqtt_broker_up

GRID_W = 40_000.0
VERSIONS = {"m1": "1.6", "m2": "2.0.1", "m3": "1.6", "m4": "2.0.1", "m5": "1.6", "m6": "2.0.1"}


def _site(topic: str) -> str:
    points = "\n".join(f"  - {{id: {sid}, circuit: main, max_current_a: 16}}" for sid in VERSIONS)
    return f"""
id: metered
timezone: Europe/Vienna
grid: {{max_import_w: {GRID_W:.0f}, max_export_w: 10000}}
circuits:
  - {{id: main, parent: null, max_current_a: 80}}
charging_points:
{points}
building: {{circuit: main, peak_w: 20000}}
meters:
  - {{id: grid, role: grid, adapter: mqtt, topic: "{topic}", power: "$.ENERGY.Power", stale_after_s: 3}}
"""


# the safe share by hand: (38.8 kW - 20 kW) / (6 × 3 × 230 V) = 4.54 A, below 6 A: 0 A
SAFE_A = 0.0


def _draw_w(stations: list[DrawingStation], ev: Ev) -> float:
    return sum(s.state.drawn_a * ev.phases * VOLTAGE_V for s in stations)


async def test_a_grid_meter_over_mqtt_steers_the_site_and_its_silence_brings_the_safe_limit(
    tmp_path: Path,
) -> None:
    if not mqtt_broker_up():
        pytest.skip("no MQTT broker on 127.0.0.1:1883 (start mosquitto)")
    topic = f"test/{secrets.token_hex(4)}/tele/grid/SENSOR"
    site_file = tmp_path / "site.yaml"
    site_file.write_text(_site(topic))
    ev = Ev(max_a=16.0)
    building = [8_000.0]
    publishing = [True]
    db = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    async with (
        aiomqtt.Client("127.0.0.1", 1883) as mqtt,
        serve_process(
            db, "metered-token-0123456789abcdef", "--site", str(site_file), "--step", "10"
        ) as server,
        contextlib.AsyncExitStack() as stack,
    ):
        stations = [
            await stack.enter_async_context(connected(server.ocpp_port, sid, v))
            for sid, v in VERSIONS.items()
        ]

        async def meter() -> None:  # a Tasmota-like meter: the building plus what the stations draw
            while True:
                if publishing[0]:
                    power = building[0] + _draw_w(stations, ev)
                    await mqtt.publish(topic, json.dumps({"ENERGY": {"Power": round(power)}}))
                await asyncio.sleep(0.25)

        async def draw() -> None:
            while True:
                await asyncio.gather(*(s.report(ev, 0.5) for s in stations), return_exceptions=True)
                await asyncio.sleep(0.5)

        tasks = [asyncio.create_task(meter()), asyncio.create_task(draw())]
        try:
            deadline = time.monotonic() + 10
            while not all(s.state.profiles for s in stations):  # the safe TxDefault, before any session
                assert time.monotonic() < deadline, "no safe limit before the sessions"
                await asyncio.sleep(0.1)
            assert all(s.state.profiles[0].limit_a == SAFE_A for s in stations)
            for i, s in enumerate(stations):
                await s.start_session(f"m{i}")
            # the grant: 38.8 kW less the building's 8 kW for the EVs, far above the safe 0 A
            deadline = time.monotonic() + 25
            while _draw_w(stations, ev) < 25_000 or not all(
                any(p.purpose == "TxProfile" for p in s.state.profiles) for s in stations
            ):
                assert time.monotonic() < deadline, "the grant never came"
                await asyncio.sleep(0.2)
            # a building step of +10 kW: every station's new limit comes within a second (woken by the
            # jump, not at the next 10 s step), and the grid holds its limit after it
            before = [len(s.state.profiles) for s in stations]
            building[0] = 18_000.0
            stepped = time.monotonic()
            while _draw_w(stations, ev) + building[0] > GRID_W * 0.99:
                assert time.monotonic() - stepped < 3, "the building step did not reach the stations"
                await asyncio.sleep(0.05)
            reaction_s = time.monotonic() - stepped
            assert reaction_s < 1.5, reaction_s
            assert any(len(s.state.profiles) > n for s, n in zip(stations, before, strict=True))
            peaks = []
            for _ in range(8):
                await asyncio.sleep(0.5)
                peaks.append(_draw_w(stations, ev) + building[0])
            assert max(peaks) <= GRID_W, peaks
            # the meter falls silent: after its 3 s and the next step (10 s at most), all at the safe limit
            publishing[0] = False
            silent = time.monotonic()
            while any(s.state.allowed_a() > SAFE_A for s in stations):
                assert time.monotonic() - silent < 16, "the silent meter did not bring the safe limit"
                await asyncio.sleep(0.2)
            publishing[0] = True  # back: the first reading wakes the loop, the grant returns
            back = time.monotonic()
            while _draw_w(stations, ev) < 15_000:
                assert time.monotonic() - back < 5, "the grant did not come back with the meter"
                await asyncio.sleep(0.2)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
