"""``serve --site`` with its grid meter on a DSMR P1 port over TCP (a P1 dongle that this test plays,
sending a DSMR 5 telegram every half second): the grant follows the meter, and a meter that falls silent
brings every station to its safe limit until its telegrams come back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from chargeflow.bench.ocpp_load import serve_process
from chargeflow.sim.drawing import VOLTAGE_V, DrawingStation, Ev, connected
from tests.dsmr_build import telegram

GRID_W = 30_000.0
VERSIONS = {"p1": "1.6", "p2": "2.0.1", "p3": "1.6", "p4": "2.0.1"}
SAFE_A = 0.0  # (29.1 kW - 20 kW) / (4 × 3 × 230 V) = 3.3 A, below 6 A: 0 A


def _site(port: int) -> str:
    points = "\n".join(f"  - {{id: {sid}, circuit: main, max_current_a: 16}}" for sid in VERSIONS)
    return f"""
id: p1-metered
timezone: Europe/Amsterdam
grid: {{max_import_w: {GRID_W:.0f}, max_export_w: 10000}}
circuits:
  - {{id: main, parent: null, max_current_a: 63}}
charging_points:
{points}
building: {{circuit: main, peak_w: 20000}}
meters:
  - {{id: grid, role: grid, template: dsmr-tcp, host: 127.0.0.1, port: {port}, stale_after_s: 2}}
"""


def _draw_w(stations: list[DrawingStation], ev: Ev) -> float:
    return sum(s.state.drawn_a * ev.phases * VOLTAGE_V for s in stations)


async def test_a_grid_meter_on_a_p1_port_steers_the_site_and_its_silence_brings_the_safe_limit(
    tmp_path: Path,
) -> None:
    ev = Ev(max_a=16.0)
    building_w = 6_000.0
    sending = [True]
    stations: list[DrawingStation] = []

    async def dongle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                if sending[0]:
                    writer.write(telegram((building_w + _draw_w(stations, ev)) / 1000).encode())
                    await writer.drain()
                await asyncio.sleep(0.5)

    p1 = await asyncio.start_server(dongle, "127.0.0.1", 0)
    site_file = tmp_path / "site.yaml"
    site_file.write_text(_site(p1.sockets[0].getsockname()[1]))
    db = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    async with (
        serve_process(db, "p1-token-0123456789abcdef", "--site", str(site_file), "--step", "3") as server,
        contextlib.AsyncExitStack() as stack,
    ):
        for sid, version in VERSIONS.items():
            stations.append(await stack.enter_async_context(connected(server.ocpp_port, sid, version)))

        async def draw() -> None:
            while True:
                await asyncio.gather(*(s.report(ev, 0.5) for s in stations))
                await asyncio.sleep(0.5)

        drawing = asyncio.create_task(draw())
        try:
            for i, s in enumerate(stations):
                await s.start_session(f"p{i}")
            # the grant from the meter: 29.1 kW less the building's 6 kW, far above the safe 0 A
            deadline = time.monotonic() + 25
            while _draw_w(stations, ev) < 15_000:
                assert time.monotonic() < deadline, "the grant never came"
                await asyncio.sleep(0.2)
            peaks = []
            for _ in range(6):
                await asyncio.sleep(0.5)
                peaks.append(_draw_w(stations, ev) + building_w)
            assert max(peaks) <= GRID_W, peaks
            # the dongle falls silent: past the meter's 2 s and at the next step, all at the safe limit
            sending[0] = False
            silent = time.monotonic()
            while any(s.state.allowed_a() > SAFE_A for s in stations):
                assert time.monotonic() - silent < 15, "the silent meter did not bring the safe limit"
                await asyncio.sleep(0.2)
            sending[0] = True
            back = time.monotonic()
            while _draw_w(stations, ev) < 15_000:
                assert time.monotonic() - back < 15, "the grant did not come back with the meter"
                await asyncio.sleep(0.2)
        finally:
            drawing.cancel()
            await asyncio.gather(drawing, return_exceptions=True)
            p1.close()
