"""``serve --site`` with a circuit meter over MQTT (the local Mosquitto) on a sub-circuit: a heat pump that
starts on the garage circuit lowers the limits of the garage's two stations within seconds, so that the
garage's 32 A fuse holds (PoFl eq. 3.2.5.1), though the grid and the main fuse have room to spare."""

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

GARAGE_FUSE_A = 32.0
HEAT_PUMP_A = 20.0  # per phase: 13.8 kW
VERSIONS = {"g1": "1.6", "g2": "2.0.1"}


def _site(building_topic: str, circuit_topic: str) -> str:
    points = "\n".join(f"  - {{id: {sid}, circuit: garage, max_current_a: 16}}" for sid in VERSIONS)
    return f"""
id: garage
grid: {{max_import_w: 60000, max_export_w: 10000}}
circuits:
  - {{id: main, parent: null, max_current_a: 100}}
  - {{id: garage, parent: main, max_current_a: {GARAGE_FUSE_A:.0f}}}
charging_points:
{points}
building: {{circuit: main, peak_w: 20000}}
meters:
  - {{id: house, role: building, adapter: mqtt, topic: "{building_topic}", power: "$.P", stale_after_s: 5}}
  - id: garage-meter
    role: circuit
    circuit: garage
    adapter: mqtt
    topic: "{circuit_topic}"
    power: "$.P"
    currents: ["$.I[0]", "$.I[1]", "$.I[2]"]
    stale_after_s: 5
"""


def _drawn_a(stations: list[DrawingStation]) -> float:
    """What the garage's EVs draw together on each phase (three-phase EVs)."""
    return sum(s.state.drawn_a for s in stations)


async def test_a_heat_pump_on_a_metered_sub_circuit_lowers_its_stations_within_its_fuse(
    tmp_path: Path,
) -> None:
    if not mqtt_broker_up():
        pytest.skip("no MQTT broker on 127.0.0.1:1883 (start mosquitto)")
    prefix = f"test/{secrets.token_hex(4)}"
    building_topic, circuit_topic = f"{prefix}/house", f"{prefix}/garage"
    site_file = tmp_path / "site.yaml"
    site_file.write_text(_site(building_topic, circuit_topic))
    ev = Ev(max_a=16.0)
    heat_pump_a = [0.0]
    db = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    async with (
        aiomqtt.Client("127.0.0.1", 1883) as mqtt,
        serve_process(
            db, "circuit-token-0123456789abcdef", "--site", str(site_file), "--step", "10"
        ) as server,
        contextlib.AsyncExitStack() as stack,
    ):
        stations = [
            await stack.enter_async_context(connected(server.ocpp_port, sid, v))
            for sid, v in VERSIONS.items()
        ]

        async def meters() -> None:  # the house (heat pump included) and the garage (heat pump and EVs)
            while True:
                hp_w = heat_pump_a[0] * 3 * VOLTAGE_V
                await mqtt.publish(building_topic, json.dumps({"P": round(5_000 + hp_w)}))
                phase_a = round(heat_pump_a[0] + _drawn_a(stations), 2)
                garage = {"P": round(phase_a * 3 * VOLTAGE_V), "I": [phase_a, phase_a, phase_a]}
                await mqtt.publish(circuit_topic, json.dumps(garage))
                await asyncio.sleep(0.25)

        async def draw() -> None:
            while True:
                await asyncio.gather(*(s.report(ev, 0.5) for s in stations), return_exceptions=True)
                await asyncio.sleep(0.5)

        tasks = [asyncio.create_task(meters()), asyncio.create_task(draw())]
        try:
            for i, s in enumerate(stations):
                await s.start_session(f"g{i}")
            # no heat pump: the two EVs share the garage's fuse (31 A with the 3 % margin), ~15.5 A each
            deadline = time.monotonic() + 25
            while _drawn_a(stations) < 28.0:
                assert time.monotonic() < deadline, f"the EVs never got the garage: {_drawn_a(stations)} A"
                await asyncio.sleep(0.2)
            assert _drawn_a(stations) <= GARAGE_FUSE_A
            # the heat pump starts: 20 A a phase on the garage; the EVs must come down to what is left
            heat_pump_a[0] = HEAT_PUMP_A
            started = time.monotonic()
            while _drawn_a(stations) + HEAT_PUMP_A > GARAGE_FUSE_A:
                assert time.monotonic() - started < 5, "the heat pump did not lower the garage's stations"
                await asyncio.sleep(0.05)
            peaks = []
            for _ in range(8):
                await asyncio.sleep(0.5)
                peaks.append(_drawn_a(stations) + HEAT_PUMP_A)
            assert max(peaks) <= GARAGE_FUSE_A, peaks
            assert min(peaks) > HEAT_PUMP_A  # the EVs still charge in what is left
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
