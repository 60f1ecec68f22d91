"""How fast a step in the site's load reaches every station: ``chargeflow serve --site`` as its own process,
N stations of the ``ocpp`` library (1.6) whose EVs draw what their profiles allow, a grid meter published
over MQTT as the building plus the stations' draw. Each round the building steps (up, then down), and the
time from the meter's MQTT publish to each station's new profile is taken; p50 and p99 over all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from chargeflow.bench.ocpp_load import serve_process
from chargeflow.sim.drawing import VOLTAGE_V, DrawingStation, Ev, connected


@dataclass(frozen=True, slots=True)
class LatencyResult:
    stations: int
    rounds: int
    latencies_ms: tuple[float, ...]  # every station's, every round
    missed: int  # station-rounds whose profile did not come within the round's timeout

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def site_text(stations: int, topic: str) -> str:
    grid_w = stations * 8_000  # less than the EVs would draw: every station's limit follows the grant
    points = "\n".join(f"  - {{id: s{i:03d}, circuit: main, max_current_a: 16}}" for i in range(stations))
    return f"""
id: latency
timezone: UTC
grid: {{max_import_w: {grid_w}, max_export_w: 0}}
circuits:
  - {{id: main, parent: null, max_current_a: {stations * 16}}}
charging_points:
{points}
meters:
  - {{id: grid, role: grid, adapter: mqtt, topic: "{topic}", power: "$.power", stale_after_s: 5}}
"""


async def measure(stations: int = 100, rounds: int = 6, step_s: float = 10.0) -> LatencyResult:
    topic = f"bench/{secrets.token_hex(4)}/grid"
    ev = Ev(max_a=16.0)
    building = [0.0]
    grid_w = stations * 8_000.0
    latencies: list[float] = []
    missed = 0
    with tempfile.TemporaryDirectory() as folder:
        site_file = Path(folder) / "site.yaml"
        site_file.write_text(site_text(stations, topic))
        url = f"sqlite+aiosqlite:///{Path(folder) / 'serve.db'}"
        async with (
            aiomqtt.Client("127.0.0.1", 1883) as mqtt,
            serve_process(
                url, secrets.token_urlsafe(24), "--site", str(site_file), "--step", f"{step_s:g}",
                "--strategy", "equal",
            ) as server,
            contextlib.AsyncExitStack() as stack,
        ):  # fmt: skip
            fleet: list[DrawingStation] = []
            for i in range(stations):
                fleet.append(await stack.enter_async_context(connected(server.ocpp_port, f"s{i:03d}", "1.6")))

            def draw_w() -> float:
                return sum(s.state.drawn_a * ev.phases * VOLTAGE_V for s in fleet)

            async def publish() -> float:
                sent = time.monotonic()
                await mqtt.publish(topic, json.dumps({"power": round(building[0] + draw_w())}))
                return sent

            async def meter() -> None:
                while True:
                    await publish()
                    await asyncio.sleep(1.0)

            async def draw() -> None:
                while True:
                    await asyncio.gather(*(s.report(ev, 2.0) for s in fleet))
                    await asyncio.sleep(2.0)

            tasks = [asyncio.create_task(meter()), asyncio.create_task(draw())]
            try:
                for i, s in enumerate(fleet):
                    await s.start_session(f"b{i}")
                await _settle(fleet, 60.0)
                for r in range(rounds):
                    building[0] = 0.25 * grid_w if r % 2 == 0 else 0.0
                    before = [len(s.state.profiles) for s in fleet]
                    sent = await publish()
                    deadline = sent + min(step_s, 5.0)
                    while time.monotonic() < deadline and _waiting(fleet, before):  # noqa: ASYNC110
                        await asyncio.sleep(0.01)  # a poll only: each profile's time is taken on arrival
                    for s, n in zip(fleet, before, strict=True):
                        if len(s.state.profiles) > n:
                            latencies.append((s.state.profiles[n].at - sent) * 1000.0)
                        else:
                            missed += 1
                    await asyncio.sleep(3.0)  # let the draw and the meter follow before the next step
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    return LatencyResult(stations, rounds, tuple(latencies), missed)


def _waiting(fleet: list[DrawingStation], before: list[int]) -> bool:
    return any(len(s.state.profiles) <= n for s, n in zip(fleet, before, strict=True))


async def _settle(fleet: list[DrawingStation], timeout_s: float) -> None:
    """Until every session has its TxProfile."""
    deadline = time.monotonic() + timeout_s
    while not all(any(p.purpose == "TxProfile" for p in s.state.profiles) for s in fleet):
        if time.monotonic() > deadline:
            raise RuntimeError("the sessions did not all get their limits")
        await asyncio.sleep(0.1)
