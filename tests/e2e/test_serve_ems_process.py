"""The EMS as its own process: ``chargeflow ems`` over the local Mosquitto grants for ``serve --site
--ems``; killed, the CSM's stations go to their safe limit once its last grant runs out; restarted, the
grant is back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from chargeflow.bench.ocpp_load import serve_process
from chargeflow.sim.drawing import DrawingStation, Ev, connected

SITE = """
id: ems-e2e
timezone: Europe/Vienna
grid: {max_import_w: 40000, max_export_w: 0}
circuits:
  - {id: main, parent: null, max_current_a: 63}
  - {id: yard, parent: main, max_current_a: 16}
charging_points:
  - {id: e1, circuit: yard, max_current_a: 32}
  - {id: e2, circuit: yard, max_current_a: 32}
building: {circuit: main, peak_w: 5000}
"""
SAFE_A = 7.7  # the yard's 16 A less the 3 % margin, over its two stations, rounded down


@contextlib.asynccontextmanager
async def ems_process(site_file: Path, url: str) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chargeflow.cli", "ems", "--site", str(site_file), "--mqtt", url, "--step", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=dict(os.environ),
    )  # fmt: skip
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        assert line.startswith("EMS"), line
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _until(predicate: Callable[[], bool], timeout_s: float, report: Callable[[], object]) -> float:
    """Wait, with the EVs drawing and reporting every second, until ``predicate``; the seconds it took."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout_s, "timed out"
        await report()  # type: ignore[misc]
        await asyncio.sleep(1.0)
    return time.monotonic() - start


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def _granted(stations: list[DrawingStation]) -> bool:
    """The grant is in force: the yard's current goes mostly to one station (EDF), beyond its safe share."""
    return max(s.state.allowed_a() for s in stations) > SAFE_A + 2


def _safe(stations: list[DrawingStation]) -> bool:
    return all(s.state.allowed_a() == pytest.approx(SAFE_A, abs=0.05) for s in stations)


async def test_a_killed_ems_brings_the_safe_limit_and_a_restarted_one_the_grant(tmp_path: Path) -> None:
    if not port_open("127.0.0.1", 1883):
        pytest.skip("no MQTT broker on 127.0.0.1:1883 (start mosquitto)")
    site_file = tmp_path / "site.yaml"
    site_file.write_text(SITE)
    url = f"mqtt://127.0.0.1:1883/chargeflow-test-{secrets.token_hex(4)}"
    ev = Ev(max_a=32.0)
    db = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    async with (
        serve_process(
            db, "ems-token-0123456789abcdef", "--site", str(site_file), "--step", "2", "--ems", url
        ) as server,
        contextlib.AsyncExitStack() as stack,
    ):
        stations = [
            await stack.enter_async_context(connected(server.ocpp_port, sid, "1.6")) for sid in ("e1", "e2")
        ]

        async def report() -> None:
            await asyncio.gather(*(s.report(ev, 1.0) for s in stations))

        for i, s in enumerate(stations):
            await s.start_session(f"t{i}")
        ems = await stack.enter_async_context(ems_process(site_file, url))
        await _until(lambda: _granted(stations), 30, report)
        ems.send_signal(signal.SIGKILL)
        await ems.wait()
        # the last grant holds 3 steps (6 s); then, within a step, every station is at its safe limit
        took = await _until(lambda: _safe(stations), 20, report)
        assert took < 12
        await stack.enter_async_context(ems_process(site_file, url))
        await _until(lambda: _granted(stations), 20, report)
